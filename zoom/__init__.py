"""The only code that talks to Zoom.

- ``zoom.errors``      the error hierarchy and the one place that classifies failures
- ``zoom.policy``      the secure meeting policy: request bodies, passcodes, markers, checks
- ``zoom.oauth``       the OAuth token endpoint call shared by every token provider
- ``zoom.singleflight`` a Redis lock so only one process renews a token at a time
- ``zoom.tokens``      token providers (static; server-to-server with a shared Redis cache)
- ``zoom.client``      the HTTP client for the meeting endpoints
- ``zoom.simulator``   a local Zoom for tests, the demo and ``telemed zoom-sim``

Nothing is re-exported here so that importing one piece (say, the simulator) does not
import the others.
"""

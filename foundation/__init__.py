"""What every floor needs and that does no I/O at import.

The settings type, URL safety, redaction, the cipher, signed-link codecs, TLS contexts,
the error base, and the Redis layouts that the web and the workers both read (dead
letters, queue gauges). It imports nothing from the rest of telemed
(docs/architecture.md, "Layers").
"""

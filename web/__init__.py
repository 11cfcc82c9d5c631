"""HTTP entry points: event ingress, doctor OAuth, start links, access API, health, admin."""

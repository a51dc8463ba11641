"""Signed webhooks (SPEC I6): admins register HTTPS endpoints for booking events; the outbox
delivers each event to each subscribed endpoint, signed with HMAC-SHA256, with retries and a
delivery log."""

"""Notifications (N1-N4), ICS invitations (F2) and personal calendar feeds (F1)."""

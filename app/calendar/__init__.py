"""The team calendar: week and day views, Me and Team, conflict overlays (C1–C3, C6)."""

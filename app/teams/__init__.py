"""Microsoft Teams online meetings (T1, T2) and their attendance (T3)."""

"""Public self-scheduling (SPEC S1-S5): landing page, slot picker, confirm and manage links."""

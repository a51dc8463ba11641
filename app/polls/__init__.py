"""Meeting polls (SPEC A5): propose common free slots, invitees answer by token, book one."""

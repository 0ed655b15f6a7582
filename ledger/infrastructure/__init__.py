"""Infrastructure: how events reach the store (mapper, stable topics, group commit, hash chain,
log paging) and the custody of members' keys (key table, encryption)."""

"""Job kinds the tests add to ordo's registry, each the way a user would add one."""

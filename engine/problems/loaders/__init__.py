"""One loader per dataset schema; each turns raw rows into ``Problem`` objects."""

"""Routes by resource. Each handler parses, calls the scheduler, renders: no queue logic."""

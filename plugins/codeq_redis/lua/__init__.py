"""The Lua scripts of the Redis store (a package so that wheels ship them)."""

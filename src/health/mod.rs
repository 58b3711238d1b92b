//! Health per resource and per app, derived from live facts each time.

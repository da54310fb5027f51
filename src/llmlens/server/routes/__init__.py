"""HTTP routes, one module per surface; each exposes `routes()`."""

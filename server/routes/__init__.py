"""HTTP routes: pages and the JSON API.  Each module's ``setup(app)`` adds its routes."""

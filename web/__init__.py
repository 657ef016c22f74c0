"""Templates, static files and translations of the browser interface."""

from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
TRANSLATIONS_DIR = WEB_DIR / "translations"

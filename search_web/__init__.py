"""Flask web app: JSON API, HTML UI and admin/job pages."""

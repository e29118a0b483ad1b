"""Flask web app: HTML UI (search, image, upload, context map, admin), JSON API, metrics; built by create_app."""


def create_app(config: dict | None = None):
    """See search_web.app.create_app."""
    from search_web.app import create_app as factory

    return factory(config)

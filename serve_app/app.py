"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from serve_app.console import mount_console
from serve_app.dependencies import Services
from serve_app.errors import ERROR_RESPONSES, install_error_handlers
from serve_app.limits import BodyLimit
from serve_app.routers import (
    detections,
    experiments,
    feature_sets,
    forecasts,
    health,
    jobs,
    maintenance,
    metrics,
    models,
    monitoring,
    policies,
    schedules,
    stats,
)


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Training service",
        summary="Train, track and register LightGBM load-forecasting models on Ray.",
        version="0.1.0",
        responses=ERROR_RESPONSES,
    )
    app.state.services = services
    app.add_middleware(BodyLimit, max_bytes=services.max_body_bytes)
    install_error_handlers(app)
    app.include_router(models.alias_router)
    for module in (
        jobs,
        schedules,
        policies,
        experiments,
        forecasts,
        detections,
        models,
        monitoring,
        feature_sets,
        stats,
        maintenance,
    ):
        app.include_router(module.router)
    for module in (metrics, health):
        app.include_router(module.router)
    mount_console(app)
    return app

"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from serve_app.dependencies import Services
from serve_app.errors import install_error_handlers
from serve_app.routers import experiments, feature_sets, health, jobs, maintenance, models, stats


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Training service",
        summary="Train, track and register LightGBM load-forecasting models on Ray.",
        version="0.1.0",
    )
    app.state.services = services
    install_error_handlers(app)
    for module in (jobs, experiments, models, feature_sets, stats, maintenance, health):
        app.include_router(module.router)
    return app

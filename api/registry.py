"""Public model names (ids and aliases) resolved to the Triton models that serve them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from api.errors import InvalidRequestError, ModelNotFoundError
from api.settings import ModelKind, ServedModel


class ModelRegistry:
    """Lookup of served models by id or alias, checked against what the route needs.

    The models it hands out carry their backend route as ``triton_model`` (``endpoint/model``
    on a named endpoint, see ``ServedModel.route``): what the request path sends to the
    backend, which routes it to that endpoint (api/backend/routing.py).
    """

    def __init__(self, models: Iterable[ServedModel]) -> None:
        self._models = [_routed(model) for model in models]
        self._by_name = {
            name: model for model in self._models for name in (model.id, *model.aliases)
        }

    def __iter__(self) -> Iterator[ServedModel]:
        return iter(self._models)

    def get(self, name: str) -> ServedModel:
        model = self._by_name.get(name)
        if model is None:
            raise ModelNotFoundError(name)
        return model

    def resolve(self, name: str, kind: ModelKind) -> ServedModel:
        """The model for ``name``; 404 if unknown, 400 if it cannot do ``kind``."""
        model = self.get(name)
        if model.kind is not kind:
            raise InvalidRequestError(
                f"The model '{name}' is a {model.kind.value} model and does not support "
                f"this endpoint.",
                param="model",
                code="model_not_supported",
            )
        return model

    def triton_models(self) -> list[str]:
        return sorted({model.triton_model for model in self._models})

    def served_by(self, route: str) -> list[str]:
        """The public ids of the models served by the Triton model at ``route``."""
        return [model.id for model in self._models if model.triton_model == route]


def _routed(model: ServedModel) -> ServedModel:
    if model.route == model.triton_model:
        return model
    return model.model_copy(update={"triton_model": model.route, "endpoint": None})

"""Fine-tuning zoo models on video datasets, in one process or many (torchrun + DDP).

``edgevc train RECIPE.yaml`` runs :func:`train` on a :class:`Recipe` read by
:func:`load_recipe`.
"""

from edgevc.train.loop import TrainResult, train
from edgevc.train.recipe import Recipe, load_recipe, recipe_from_dict

__all__ = ["Recipe", "TrainResult", "load_recipe", "recipe_from_dict", "train"]

"""Compression of trained networks: int8 by post-training quantization and by quantization-aware training.

``edgevc compress RECIPE.yaml`` runs :func:`compress` on a :class:`CompressRecipe`
read by :func:`load_compress_recipe`: fp32, PTQ and QAT artifacts per target,
each verified by the export and measured through ``edgevc.runtime`` on the
held-out split. One module per step: :mod:`~edgevc.compress.recipe`,
:mod:`~edgevc.compress.nncf_qat` (OpenVINO, ONNX), :mod:`~edgevc.compress.xnnpack_qat`
(ExecuTorch), :mod:`~edgevc.compress.finetune`, :mod:`~edgevc.compress.evaluate`
(torch-free), :mod:`~edgevc.compress.report`, :mod:`~edgevc.compress.pipeline`.
"""

from edgevc.compress.pipeline import compress
from edgevc.compress.recipe import CompressRecipe, compress_recipe_from_dict, load_compress_recipe
from edgevc.compress.report import CompressResult

__all__ = ["CompressRecipe", "CompressResult", "compress", "compress_recipe_from_dict", "load_compress_recipe"]

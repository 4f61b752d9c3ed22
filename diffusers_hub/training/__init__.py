"""Training utilities: the loop, train commands, EMA, data helpers and torch.distributed setup.

A plugin's ``diffusers-hub train NAME`` is a ``TrainCommand`` (see ``command``); ``train`` is the
loop underneath it.

Example:
    >>> from diffusers_hub.training import TrainingConfig, train  # doctest: +SKIP
    >>> result = train(unet, dataset, DDPMScheduler(), TrainingConfig(steps=100, out_dir="out"),
    ...                pipeline_factory=lambda u, s: DDPMPipeline(unet=u, scheduler=s))  # doctest: +SKIP
"""

from __future__ import annotations

from diffusers_hub.training.checkpoints import find_latest_checkpoint
from diffusers_hub.training.command import (
    COMMON_OPTIONS,
    TrainCommand,
    TrainJob,
    run_training,
    training_config,
)
from diffusers_hub.training.data import (
    ImageFolderDataset,
    ResumableDistributedSampler,
    TensorImageDataset,
    images_to_unit_range,
)
from diffusers_hub.training.distributed import (
    DistributedContext,
    init_distributed,
    shutdown_distributed,
)
from diffusers_hub.training.ema import EMAModel, ema_decay
from diffusers_hub.training.loop import (
    PipelineFactory,
    SampleFn,
    TrainingConfig,
    TrainingResult,
    train,
)
from diffusers_hub.training.losses import (
    ForwardFn,
    LossFn,
    default_forward,
    diffusion_loss_inputs,
    noise_prediction_loss,
    noise_prediction_objective,
    sample_timesteps,
    split_batch,
)

__all__ = [
    "COMMON_OPTIONS",
    "DistributedContext",
    "EMAModel",
    "ForwardFn",
    "ImageFolderDataset",
    "LossFn",
    "PipelineFactory",
    "ResumableDistributedSampler",
    "SampleFn",
    "TensorImageDataset",
    "TrainCommand",
    "TrainJob",
    "TrainingConfig",
    "TrainingResult",
    "default_forward",
    "diffusion_loss_inputs",
    "ema_decay",
    "find_latest_checkpoint",
    "images_to_unit_range",
    "init_distributed",
    "noise_prediction_loss",
    "noise_prediction_objective",
    "run_training",
    "sample_timesteps",
    "shutdown_distributed",
    "split_batch",
    "train",
    "training_config",
]

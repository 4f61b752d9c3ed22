"""The denoising loop of every image pipeline (a base of ``DiffusionPipeline``): x_T, the
scheduled steps, the output; a ``__call__`` passes only its own model call."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from diffusers_hub.noise import randn_tensor

if TYPE_CHECKING:
    from diffusers_hub.pipeline import ImagePipelineOutput, OutputType

__all__ = ["DenoisingLoop", "StepCallback", "guided_noise", "sample_shape", "step_options"]

StepCallback = Callable[[int, int, torch.Tensor], None]


def sample_shape(model: Any, batch_size: int) -> tuple[int, int, int, int]:
    """(B, C, H, W) of the samples an image model produces, from its config's ``sample_size``
    (an int or (H, W)) and ``in_channels``."""
    size = model.config.sample_size
    if size is None:
        raise ValueError("the UNet config has no sample_size; set it to generate images")
    height, width = (size, size) if isinstance(size, int) else size
    return (batch_size, model.config.in_channels, height, width)


def step_options(scheduler: Any, **options: Any) -> dict[str, Any]:
    """The subset of ``options`` (``eta``, ``generator``, ...) that ``scheduler.step`` accepts."""
    params = inspect.signature(scheduler.step).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return options
    return {k: v for k, v in options.items() if k in params}


def guided_noise(
    noise_uncond: torch.Tensor, noise_text: torch.Tensor, guidance_scale: float
) -> torch.Tensor:
    """Classifier-free guidance: ``eps_u + s * (eps_c - eps_u)``.

    References:
        Ho & Salimans, "Classifier-Free Diffusion Guidance", arXiv:2207.12598 (eq. 6, with
        s = 1 + w).
    """
    return noise_uncond + guidance_scale * (noise_text - noise_uncond)


def _guide_uncond_first(output: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    noise_uncond, noise_text = output.chunk(2)
    return guided_noise(noise_uncond, noise_text, guidance_scale)


class DenoisingLoop:
    """The sampling loop of :class:`~diffusers_hub.pipeline.DiffusionPipeline`."""

    _components: dict[str, Any]
    _progress_bar_config: dict[str, Any]

    if TYPE_CHECKING:

        def check_arguments(self, arguments: Mapping[str, Any]) -> int: ...

    def set_progress_bar_config(self, **kwargs: Any) -> None:
        """Options for the tqdm progress bar of ``__call__`` (``disable=True`` turns it off)."""
        self._progress_bar_config = dict(kwargs)

    def progress_bar(self, iterable: Iterable[Any] | None = None, total: int | None = None) -> Any:
        """A tqdm bar configured by :meth:`set_progress_bar_config`."""
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, **self._progress_bar_config)

    def prepare_latents(
        self,
        shape: Sequence[int],
        generator: torch.Generator | list[torch.Generator] | None,
        latents: torch.Tensor | None = None,
        *,
        model: Any = None,
        scheduler: Any = None,
    ) -> torch.Tensor:
        """The initial sample x_T: ``latents`` (checked against ``shape``) or noise drawn from
        ``generator``, on ``model``'s device and dtype (default ``self.unet``), scaled by
        ``scheduler.init_noise_sigma`` (default ``self.scheduler``)."""
        model = self._components["unet"] if model is None else model
        scheduler = self._components["scheduler"] if scheduler is None else scheduler
        device, dtype = model.device, model.dtype
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        elif tuple(latents.shape) != tuple(shape):
            raise ValueError(f"latents have shape {tuple(latents.shape)}, expected {tuple(shape)}")
        noise: torch.Tensor = latents.to(device=device, dtype=dtype) * scheduler.init_noise_sigma
        return noise

    def denoise(
        self,
        latents: torch.Tensor,
        predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        *,
        scheduler: Any = None,
        guidance_scale: float = 1.0,
        guide: Callable[[torch.Tensor, float], torch.Tensor] = _guide_uncond_first,
        callback: StepCallback | None = None,
        callback_steps: int = 1,
        first_step: int = 0,
        **step_kwargs: Any,
    ) -> torch.Tensor:
        """Step ``scheduler`` (default ``self.scheduler``) from ``latents`` over its timesteps
        under a progress bar, calling ``predict(model_input, t)``; with guidance (a scale other
        than 1) on the doubled batch, halves combined by ``guide`` ([uncond, cond] rows by
        default). ``step_kwargs`` reach ``step`` where it takes them; returns the last sample."""
        scheduler = self._components["scheduler"] if scheduler is None else scheduler
        guided = guidance_scale != 1.0
        options = step_options(scheduler, **step_kwargs)
        for i, t in enumerate(self.progress_bar(scheduler.timesteps), start=first_step):
            model_input = scheduler.scale_model_input(latents, t)
            if guided:
                model_input = torch.cat([model_input, model_input])
            output = predict(model_input, t)
            if guided:
                output = guide(output, guidance_scale)
            latents = scheduler.step(output, t, latents, **options)[0]
            if callback is not None and i % callback_steps == 0:
                callback(i, int(t), latents)
        return latents

    def generate_images(
        self,
        arguments: Mapping[str, Any],
        predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        *,
        shape: Sequence[int] | None = None,
        decode: Callable[[torch.Tensor], torch.Tensor] | None = None,
        **step_kwargs: Any,
    ) -> ImagePipelineOutput | tuple[Any]:
        """An image pipeline's whole call from its ``__call__``'s ``locals()``: checks, x_T of
        ``shape`` (default from ``self.unet``) or ``latents``, :meth:`denoise`, ``decode`` and
        :meth:`image_output`: ``return self.generate_images(locals(), predict)``."""
        self.check_arguments(arguments)
        args = {"latents": None, "guidance_scale": 1.0, **arguments}
        generator = args["generator"]
        if shape is None:
            shape = sample_shape(self._components["unet"], args["batch_size"])
        latents = self.prepare_latents(shape, generator, args["latents"])
        self._components["scheduler"].set_timesteps(
            args["num_inference_steps"], device=latents.device
        )
        latents = self.denoise(
            latents,
            predict,
            guidance_scale=args["guidance_scale"],
            callback=args["callback"],
            callback_steps=args["callback_steps"],
            generator=generator,
            **step_kwargs,
        )
        images = latents if decode is None else decode(latents)
        return self.image_output(images, args["output_type"], args["return_dict"])

    def image_output(
        self, images: torch.Tensor, output_type: OutputType, return_dict: bool
    ) -> ImagePipelineOutput | tuple[Any]:
        """(B, C, H, W) samples in [-1, 1] as ``__call__`` returns them (:func:`tensor_to_images`)."""
        from diffusers_hub.pipeline import ImagePipelineOutput, tensor_to_images

        converted = tensor_to_images(images, output_type)
        return ImagePipelineOutput(converted) if return_dict else (converted,)

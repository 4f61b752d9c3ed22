"""BDDMPipeline: mel spectrogram to waveform with a DiffWave vocoder and a BDDM noise schedule."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
import torch

from diffusers_hub.noise import randn_tensor
from diffusers_hub.pipeline import AudioPipelineOutput, DiffusionPipeline
from diffusers_hub_bddm.diffwave import DiffWave
from diffusers_hub_bddm.mel import MelSpectrogram
from diffusers_hub_bddm.scheduler import BDDMScheduler

__all__ = ["BDDMPipeline"]

DEFAULT_SAMPLING_RATE = 22050


class BDDMPipeline(DiffusionPipeline):
    """Neural vocoding: a waveform from a log-mel spectrogram.

    The loop is Algorithm 3 of BDDM: start from white noise as long as the spectrogram's frames
    times the hop length, and apply the scheduler's reverse step at each of its (few, searched)
    noise levels, querying the DiffWave score network at the matching continuous step. The mel
    processor (``mel``) documents and computes the front end the vocoder expects.

    References:
        Lam et al. 2022, BDDM, arXiv:2203.13508; Kong et al. 2021, DiffWave, arXiv:2009.09761.

    Example:
        >>> from diffusers_hub_bddm.scheduler import LJSPEECH_12_STEPS
        >>> vocoder = BDDMPipeline(
        ...     diffwave=DiffWave(num_res_layers=2, res_channels=8, skip_channels=8),
        ...     scheduler=BDDMScheduler(noise_schedule=list(LJSPEECH_12_STEPS)),
        ...     mel=MelSpectrogram(),
        ... )  # or DiffusionPipeline.from_pretrained(a folder written by `convert bddm`)
        >>> vocoder.set_progress_bar_config(disable=True)
        >>> audio_in = torch.sin(torch.arange(8192) * 2 * torch.pi * 440 / 22050)
        >>> mel = vocoder.mel(audio_in)  # (1, 80, 33) log-mel
        >>> out = vocoder(mel, generator=torch.manual_seed(0))
        >>> tuple(out.audios.shape), out.sampling_rate
        ((1, 1, 8448), 22050)
    """

    diffwave: DiffWave
    scheduler: BDDMScheduler
    mel: MelSpectrogram | None
    denoisers = ("diffwave",)
    output_types: ClassVar[tuple[str, ...]] = ("pt", "np")

    def __init__(
        self, diffwave: DiffWave, scheduler: BDDMScheduler, mel: MelSpectrogram | None = None
    ) -> None:
        super().__init__(diffwave=diffwave, scheduler=scheduler, mel=mel)

    @property
    def sampling_rate(self) -> int:
        """Samples per second of the generated audio (the mel front end's rate)."""
        return int(self.mel.sampling_rate) if self.mel is not None else DEFAULT_SAMPLING_RATE

    @torch.no_grad()
    def __call__(
        self,
        mel_spectrogram: torch.Tensor | np.ndarray,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_inference_steps: int | None = None,
        noise_schedule: Sequence[float] | None = None,
        output_type: str = "pt",
        return_dict: bool = True,
        callback: Callable[[int, float, torch.Tensor], None] | None = None,
        callback_steps: int = 1,
    ) -> AudioPipelineOutput | tuple[object]:
        """Vocode log-mel spectrograms.

        Args:
            mel_spectrogram: (B, n_mels, frames) or (n_mels, frames) log-mel spectrogram, as
                :class:`~diffusers_hub_bddm.mel.MelSpectrogram` computes it.
            generator: seeds the initial noise and every step's noise (one per item when a
                list).
            num_inference_steps: respace the training schedule to this many steps instead of
                the scheduler's searched schedule (``scheduler.config.noise_schedule``).
            noise_schedule: a searched schedule's betas (clean end first) for this call.
            output_type: ``"pt"`` (tensor) or ``"np"`` (float32 array).
            return_dict: return an :class:`AudioPipelineOutput` (else a tuple).
            callback: called as ``callback(step_index, timestep, sample)`` every
                ``callback_steps`` steps.
            callback_steps: how often the callback runs.

        Returns:
            ``audios``: (B, 1, frames * hop_length) waveforms clipped to [-1, 1];
            ``sampling_rate``.

        Raises:
            ValueError: a spectrogram of the wrong rank or band count, or an unknown
                ``output_type``.
        """
        device, dtype = self.device, self.diffwave.dtype
        mel = torch.as_tensor(mel_spectrogram).to(device=device, dtype=dtype)
        if mel.ndim == 2:
            mel = mel[None]
        self.check_inputs(
            batch_size=mel.shape[0] if mel.ndim == 3 else None,
            generator=generator,
            num_inference_steps=num_inference_steps,
            output_type=output_type,
            callback_steps=callback_steps,
        )
        n_mels = self.diffwave.config.n_mels
        if mel.ndim != 3 or mel.shape[1] != n_mels:
            raise ValueError(
                f"mel_spectrogram must be (B, {n_mels}, frames) or ({n_mels}, frames); got "
                f"{tuple(mel.shape)}"
            )
        length = mel.shape[-1] * self.diffwave.hop_length
        shape = (mel.shape[0], self.diffwave.config.in_channels, length)
        audio = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        self.scheduler.set_timesteps(num_inference_steps, device=device, betas=noise_schedule)
        for i, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            eps = self.diffwave(audio, t, mel).sample
            audio = self.scheduler.step(eps, t, audio, generator=generator).prev_sample
            if callback is not None and i % callback_steps == 0:
                callback(i, float(t), audio)
        audio = audio.clamp(-1.0, 1.0)
        audios: torch.Tensor | np.ndarray = (
            audio.float().cpu().numpy() if output_type == "np" else audio
        )
        if not return_dict:
            return (audios,)
        return AudioPipelineOutput(audios=audios, sampling_rate=self.sampling_rate)

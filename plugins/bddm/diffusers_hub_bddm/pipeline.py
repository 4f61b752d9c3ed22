"""BDDMPipeline: mel spectrogram to waveform with a DiffWave vocoder and a BDDM noise schedule."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from diffusers_hub.noise import randn_tensor
from diffusers_hub.pipeline import AudioPipelineOutput, DiffusionPipeline
from diffusers_hub_bddm.diffwave import DiffWave
from diffusers_hub_bddm.mel import MelSpectrogram
from diffusers_hub_bddm.schedule_net import BDDMScheduleNetwork
from diffusers_hub_bddm.scheduler import BDDMScheduler

__all__ = ["BDDMPipeline"]

DEFAULT_SAMPLING_RATE = 22050


class BDDMPipeline(DiffusionPipeline):
    """Neural vocoding: a waveform from a log-mel spectrogram.

    The loop is Algorithm 3 of BDDM: start from white noise as long as the spectrogram's frames
    times the hop length, and apply the scheduler's reverse step at each of its (few, searched)
    noise levels, querying the DiffWave score network at the matching continuous step. The mel
    processor (``mel``) documents and computes the front end the vocoder expects: Tacotron 2's
    convention (80 Slaney bands, 22,050 Hz, hop 256, natural log of the magnitude clamped at
    1e-5), so a Tacotron 2 mel goes in as it comes out, (B, 80, frames) or (80, frames), torch or
    numpy. ``pipe(audio=wav)`` / :meth:`vocode_audio` analyses a waveform with that front end and
    resynthesises it; with no input at all the pipeline vocodes a short built-in phrase of
    synthetic notes (what ``diffusers-hub generate bddm`` plays). ``schedule_net``, when present,
    is the BDDM schedule network that :meth:`BDDMScheduler.search` uses to find new schedules.

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
    denoisers: ClassVar[tuple[str, ...]] = ("diffwave",)
    output_types: ClassVar[tuple[str, ...]] = ("pt", "np")
    schedule_net: BDDMScheduleNetwork | None
    optional_components: ClassVar[tuple[str, ...]] = ("mel", "schedule_net")

    def __init__(
        self,
        diffwave: DiffWave,
        scheduler: BDDMScheduler,
        mel: MelSpectrogram | None = None,
        schedule_net: BDDMScheduleNetwork | None = None,
    ) -> None:
        super().__init__(diffwave=diffwave, scheduler=scheduler, mel=mel, schedule_net=schedule_net)

    @property
    def sampling_rate(self) -> int:
        """Samples per second of the generated audio (the mel front end's rate)."""
        return int(self.mel.sampling_rate) if self.mel is not None else DEFAULT_SAMPLING_RATE

    def _front_end(self) -> MelSpectrogram:
        return self.mel if self.mel is not None else MelSpectrogram()

    def analyse(
        self, audio: torch.Tensor | np.ndarray, sampling_rate: int | None = None
    ) -> torch.Tensor:
        """The log-mel spectrogram of a waveform, as the vocoder expects it.

        Args:
            audio: (L,), (B, L) or (B, 1, L) waveform in [-1, 1], torch or numpy.
            sampling_rate: the waveform's rate; resampled (polyphase, ``scipy.signal``) to
                :attr:`sampling_rate` when it differs. None: already at that rate.

        Returns:
            (B, n_mels, frames) float32 log-mel spectrogram.

        Raises:
            ValueError: audio of another rank, empty or non-finite audio, a bad rate.
        """
        wave = torch.as_tensor(np.asarray(audio) if not isinstance(audio, torch.Tensor) else audio)
        wave = wave.detach().to("cpu", torch.float32)
        if wave.ndim == 3 and wave.shape[1] == 1:
            wave = wave[:, 0]
        if wave.ndim == 1:
            wave = wave[None]
        if wave.ndim != 2 or wave.shape[-1] == 0:
            raise ValueError(
                f"audio must be (L,), (B, L) or (B, 1, L) with L > 0; got {tuple(wave.shape)}"
            )
        if not bool(torch.isfinite(wave).all()):
            raise ValueError("audio holds NaN or infinite samples")
        rate = self.sampling_rate
        if sampling_rate is not None and int(sampling_rate) != rate:
            if int(sampling_rate) <= 0:
                raise ValueError(f"sampling_rate must be positive; got {sampling_rate}")
            from scipy.signal import resample_poly

            g = math.gcd(rate, int(sampling_rate))
            wave = torch.from_numpy(
                resample_poly(wave.numpy(), rate // g, int(sampling_rate) // g, axis=-1).astype(
                    np.float32
                )
            )
        with torch.no_grad():
            return self._front_end()(wave)

    def vocode_audio(
        self,
        audio: torch.Tensor | np.ndarray,
        sampling_rate: int | None = None,
        **kwargs: Any,
    ) -> AudioPipelineOutput | tuple[object]:
        """Analyse a waveform with the mel front end and vocode it back (a round trip).

        Args:
            audio: (L,), (B, L) or (B, 1, L) waveform in [-1, 1] (see :meth:`analyse`).
            sampling_rate: its rate (resampled when it differs from :attr:`sampling_rate`).
            **kwargs: passed to :meth:`__call__` (``generator``, ``num_inference_steps``, ...).

        Returns:
            What :meth:`__call__` returns; the audio is cropped to the input's length.
        """
        return self(audio=audio, audio_sampling_rate=sampling_rate, **kwargs)

    @torch.no_grad()
    def __call__(
        self,
        mel_spectrogram: torch.Tensor | np.ndarray | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_inference_steps: int | None = None,
        noise_schedule: Sequence[float] | None = None,
        output_type: str = "pt",
        return_dict: bool = True,
        callback: Callable[[int, float, torch.Tensor], None] | None = None,
        callback_steps: int = 1,
        audio: torch.Tensor | np.ndarray | None = None,
        audio_sampling_rate: int | None = None,
        temperature: float | None = None,
    ) -> AudioPipelineOutput | tuple[object]:
        """Vocode log-mel spectrograms.

        Args:
            mel_spectrogram: (B, n_mels, frames) or (n_mels, frames) log-mel spectrogram, as
                :class:`~diffusers_hub_bddm.mel.MelSpectrogram` (and Tacotron 2) computes it.
                None with ``audio`` None: the built-in phrase
                (:func:`~diffusers_hub_bddm.data.demo_phrase`).
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
            audio: a waveform to analyse and resynthesise instead of a spectrogram (see
                :meth:`analyse`); the output is cropped to its length.
            audio_sampling_rate: the rate of ``audio`` (default: :attr:`sampling_rate`).
            temperature: factor in [0, 1] on the noise each reverse step adds (default: the
                scheduler's ``temperature``, which a searched scheduler folder records; 1 is
                DDPM / BDDM sampling, 0 takes each step's mean).

        Returns:
            ``audios``: (B, 1, frames * hop_length) waveforms clipped to [-1, 1];
            ``sampling_rate``.

        Raises:
            ValueError: both a spectrogram and audio, a spectrogram of the wrong rank or band
                count, or an unknown ``output_type``.
        """
        crop: int | None = None
        if audio is not None:
            if mel_spectrogram is not None:
                raise ValueError("pass mel_spectrogram or audio, not both")
            mel_spectrogram = self.analyse(audio, audio_sampling_rate)
            crop = int(np.shape(audio)[-1])
            if audio_sampling_rate is not None and int(audio_sampling_rate) != self.sampling_rate:
                crop = round(crop * self.sampling_rate / int(audio_sampling_rate))
        elif mel_spectrogram is None:
            from diffusers_hub_bddm.data import demo_phrase

            mel_spectrogram = self.analyse(demo_phrase(self.sampling_rate))
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
        sample = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        self.scheduler.set_timesteps(
            num_inference_steps, device=device, betas=noise_schedule, temperature=temperature
        )
        for i, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            eps = self.diffwave(sample, t, mel).sample
            sample = self.scheduler.step(eps, t, sample, generator=generator).prev_sample
            if callback is not None and i % callback_steps == 0:
                callback(i, float(t), sample)
        sample = sample.clamp(-1.0, 1.0)
        if crop is not None:
            sample = sample[..., :crop]
        audios: torch.Tensor | np.ndarray = (
            sample.float().cpu().numpy() if output_type == "np" else sample
        )
        if not return_dict:
            return (audios,)
        return AudioPipelineOutput(audios=audios, sampling_rate=self.sampling_rate)

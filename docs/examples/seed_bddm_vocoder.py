"""The seed's BDDM example: turn a mel spectrogram into speech (here: any sound) with a vocoder.

Usage: python seed_bddm_vocoder.py PIPELINE_FOLDER [IN.wav|-] [OUT.wav]
PIPELINE_FOLDER: a BDDMPipeline folder, e.g. one written by
``diffusers-hub convert bddm --checkpoint DiffWave.pkl --noise-schedule 12steps.ns --out bddm-lj``
from BDDM's released LJSpeech vocoder. IN.wav: a 22050 Hz recording whose mel spectrogram is
vocoded (default ``-``: a short synthetic melody). The seed took its mel spectrogram from
Tacotron 2, which needs a download; any 22050 Hz log-mel in the Tacotron 2 format works.
"""

import sys

import numpy as np
import torch
from scipy.io.wavfile import read as wavread
from scipy.io.wavfile import write as wavwrite

from diffusers_hub import DiffusionPipeline

if len(sys.argv) < 2:
    sys.exit(__doc__)
model_id = sys.argv[1]
source = sys.argv[2] if len(sys.argv) > 2 else "-"
out = sys.argv[3] if len(sys.argv) > 3 else "generated_audio.wav"

# load the BDDM pipeline
bddm = DiffusionPipeline.from_pretrained(model_id)
sampling_rate = bddm.sampling_rate

# the mel spectrogram to vocode: from a recording, or a melody of three notes
if source != "-":
    rate, data = wavread(source)
    assert rate == sampling_rate, f"{source} is {rate} Hz; the vocoder expects {sampling_rate} Hz"
    waveform = torch.from_numpy(data.astype(np.float32) / max(1.0, float(np.abs(data).max())))
else:
    t = torch.arange(int(0.3 * sampling_rate)) / sampling_rate
    notes = [220.0, 277.2, 329.6]  # A3, C#4, E4
    waveform = torch.cat(
        [0.5 * torch.sin(2 * torch.pi * f * t) * torch.hann_window(len(t)) for f in notes]
    )
mel_spec = bddm.mel(waveform)  # (1, 80, frames) log-mel

# generate the audio by passing the mel spectrogram to the BDDM pipeline
generator = torch.manual_seed(0)
audio = bddm(mel_spec, generator=generator).audios  # (1, 1, samples) in [-1, 1]

# save generated audio
wavwrite(out, sampling_rate, audio.squeeze().cpu().numpy())

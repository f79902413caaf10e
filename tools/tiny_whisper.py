#!/usr/bin/env python3
"""Build a tiny faster-whisper model folder offline: random weights, Whisper's real multilingual vocabulary.

    .venvs/transcribe/bin/python tools/tiny_whisper.py OUT_DIR [--seed 0]

For tests and smoke runs of the ``whisper`` engine where no trained model can be fetched: the folder has what a
pre-staged real model has (``model.bin``, ``config.json``, ``vocabulary.json`` written by CTranslate2's converter,
``tokenizer.json``, ``preprocessor_config.json``) and loads through the same ``faster_whisper.WhisperModel(path)``.
Its words are nonsense (the weights are random), their times and the pipeline around them are real.

The weights go through ``ctranslate2.converters.Converter.convert`` (the converter's own validation,
quantisation and serialisation, as ``ct2-transformers-converter`` does for a Hugging Face checkpoint), into a
``WhisperSpec`` laid out like ``TransformersConverter``'s Whisper loader fills it. The vocabulary is the one
``openai-whisper`` ships (``whisper/assets/multilingual.tiktoken``, in the transcribe env with --no-deps): its
byte-pair ranks become a Hugging Face byte-level BPE tokenizer (merges recovered from the ranks, as
``transformers``' tiktoken converter does), followed by Whisper's special, language and timestamp tokens.
"""

import argparse
import base64
import json
from pathlib import Path

import numpy as np

N_MELS = 80
AUDIO_CTX = 1500  # encoder positions: 30 s of 10 ms frames after the stride-2 convolution
TEXT_CTX = 448
SPECIALS = ["<|endoftext|>", "<|startoftranscript|>"]
TASKS = ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>",
         "<|notimestamps|>"]
TIMESTAMPS = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]


def whisper_ranks():
    """Whisper's multilingual byte-pair ranks (bytes -> rank) from the openai-whisper package's assets."""
    import importlib.util

    spec = importlib.util.find_spec("whisper")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("openai-whisper is not installed (envs/transcribe.yaml installs it with --no-deps)")
    path = Path(spec.submodule_search_locations[0]) / "assets" / "multilingual.tiktoken"
    ranks = {}
    for line in path.read_text().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _bytes_to_unicode():
    """GPT-2's reversible byte -> printable character map (the byte-level alphabet of the BPE vocabulary)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = printable[:], 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars)}


def _split(ranks, token, max_rank):
    """The two parts whose merge made ``token``: BPE on its bytes with the merges ranked below its own."""
    parts = [bytes([b]) for b in token]
    while True:
        best = None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < max_rank and (best is None or rank < best[1]):
                best = (i, rank)
        if best is None:
            return parts
        i = best[0]
        parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2:]


def build_tokenizer(ranks, languages):
    """A Hugging Face ``tokenizers`` byte-level BPE over Whisper's ranks, plus its special tokens (in order)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    byte_chars = _bytes_to_unicode()
    text = {token: "".join(byte_chars[b] for b in token) for token in ranks}
    vocab = {text[token]: rank for token, rank in ranks.items()}
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) > 1:
            left, right = _split(ranks, token, rank)
            merges.append((text[left], text[right]))
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = special_tokens(languages)
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tokenizer, [*sorted(vocab, key=vocab.get), *specials]


def special_tokens(languages):
    return [*SPECIALS, *(f"<|{code}|>" for code in languages), *TASKS, *TIMESTAMPS]


def random_spec(vocab_size, d_model=64, heads=2, layers=2, seed=0):
    """A WhisperSpec with random weights, shaped as TransformersConverter's Whisper loader fills it."""
    from ctranslate2.specs import whisper_spec

    rng = np.random.default_rng(seed)

    def weights(*shape, scale=None):
        return (rng.standard_normal(shape) * (scale or shape[-1] ** -0.5)).astype(np.float32)

    def linear(spec, n_out, n_in, bias=True):
        spec.weight = weights(n_out, n_in)
        if bias:
            spec.bias = np.zeros(n_out, np.float32)

    def norm(spec):
        spec.gamma, spec.beta = np.ones(d_model, np.float32), np.zeros(d_model, np.float32)

    def attention(spec, self_attention):
        if self_attention:
            linear(spec.linear[0], 3 * d_model, d_model)  # fused q, k, v
        else:
            linear(spec.linear[0], d_model, d_model)  # q
            linear(spec.linear[1], 2 * d_model, d_model)  # fused k, v (from the encoder)
        linear(spec.linear[-1], d_model, d_model)
        norm(spec.layer_norm)

    def layer(spec, cross):
        attention(spec.self_attention, True)
        if cross:
            attention(spec.attention, False)
        linear(spec.ffn.linear_0, 4 * d_model, d_model)
        linear(spec.ffn.linear_1, d_model, 4 * d_model)
        norm(spec.ffn.layer_norm)

    spec = whisper_spec.WhisperSpec(layers, heads, layers, heads)
    encoder, decoder = spec.encoder, spec.decoder
    encoder.conv1.weight, encoder.conv1.bias = weights(d_model, N_MELS, 3), np.zeros(d_model, np.float32)
    encoder.conv2.weight, encoder.conv2.bias = weights(d_model, d_model, 3), np.zeros(d_model, np.float32)
    encoder.position_encodings.encodings = weights(AUDIO_CTX, d_model, scale=0.02)
    norm(encoder.layer_norm)
    for item in encoder.layer:
        layer(item, cross=False)
    decoder.embeddings.weight = weights(vocab_size, d_model, scale=0.02)
    decoder.position_encodings.encodings = weights(TEXT_CTX, d_model, scale=0.02)
    norm(decoder.layer_norm)
    for item in decoder.layer:
        layer(item, cross=True)
    linear(decoder.projection, vocab_size, d_model, bias=False)
    return spec


def build(out_dir, seed=0, quantization=None):
    """Write the model folder ``out_dir``; returns its path."""
    import ctranslate2
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    ranks = whisper_ranks()
    tokenizer, tokens = build_tokenizer(ranks, _LANGUAGE_CODES)
    spec = random_spec(len(tokens), seed=seed)
    spec.register_vocabulary(tokens)
    eot, first_lang = len(ranks), len(ranks) + len(SPECIALS)
    spec.config.suppress_ids = [tokens.index(t) for t in TASKS[:-1]]  # never emit task tokens as text
    spec.config.suppress_ids_begin = [220, eot]
    spec.config.lang_ids = list(range(first_lang, first_lang + len(_LANGUAGE_CODES)))
    spec.config.alignment_heads = [(1, 0), (1, 1)]  # the last decoder layer's heads, as the converter's default

    class RandomWhisper(ctranslate2.converters.Converter):
        def _load(self):
            return spec

    out = Path(RandomWhisper().convert(str(out_dir), quantization=quantization, force=True))
    tokenizer.save(str(out / "tokenizer.json"))
    preprocessor = {"feature_size": N_MELS, "sampling_rate": 16000, "hop_length": 160, "chunk_length": 30,
                    "n_fft": 400}
    (out / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2) + "\n")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build(args.out_dir, args.seed))


if __name__ == "__main__":
    main()

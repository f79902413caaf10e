"""dlib's ResNet face-recognition network (``dlib_face_recognition_resnet_model_v1.dat``) run by torch.

dlib-bin, the prebuilt dlib wheel, has no BLAS: its descriptor takes ~60-70 ms of one core per face chip. The same
network in torch takes ~8 ms (~4.5 ms each in a batch of 5), so the identity step reads the weights from dlib's own
file and runs them here. The descriptors equal dlib's to ~1e-6 (tests/test_identity.py compares them on real faces).

The file is dlib's serialisation of the network (dlib/dnn/core.h, layers.h, input.h): each layer's details in
forward order, each starting with a version string. The reader takes the layers this network has: the input's
channel means, convolutions (``con_4``), affine (folded batch-norm) layers, poolings and the last fully-connected
layer, and checks that they make the architecture of dlib's ``dnn_face_recognition_ex.cpp``: a 7x7 stem, then
residual blocks of two 3x3 convolutions; a block that halves the size adds its input average-pooled 2x2, zero-padded
to the larger of the two tensors (dlib's ``add_prev``); then the mean over space and a 128-d linear map.
"""

from dataclasses import dataclass, field

import numpy as np

INPUT_SIZE = 150
DESCRIPTOR_SIZE = 128
# version strings of the layers read (dlib serialises a std::string as a compact length, then its bytes)
INPUT, CONV, AFFINE, MAX_POOL, AVG_POOL, FC = ("input_rgb_image_sized", "con_4", "affine_", "max_pool_2",
                                               "avg_pool_2", "fc_2")


class FormatError(ValueError):
    """The file is not the network this reader knows."""


class Reader:
    """dlib's serialised values from a byte string: compact integers, float_details floats, tensors."""

    def __init__(self, data: bytes, offset: int = 0):
        self.data, self.pos = data, offset

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise FormatError("the file ends inside a layer")
        self.pos += 1
        return self.data[self.pos - 1]

    def int(self) -> int:
        """A compact integer: a control byte (its low bits the byte count, 0x80 the sign), then little-endian
        bytes."""
        control = self.byte()
        count = control & 0x0F
        if count > 8:
            raise FormatError(f"bad integer at byte {self.pos - 1}")
        value = int.from_bytes(self.data[self.pos: self.pos + count], "little")
        self.pos += count
        return -value if control & 0x80 else value

    def float(self) -> float:
        """A float as dlib's float_details: mantissa and exponent, value = mantissa * 2 ** exponent."""
        mantissa = self.int()
        return float(np.ldexp(float(mantissa), self.int()))

    def tensor(self) -> np.ndarray:
        """A tensor: version 2, its shape (samples, k, rows, columns), then little-endian float32 values."""
        if self.int() != 2:
            raise FormatError(f"bad tensor at byte {self.pos}")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        if min(shape) < 0 or self.pos + 4 * count > len(self.data):
            raise FormatError("the file ends inside a tensor")
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
        self.pos += 4 * count
        return values.reshape(shape).astype(np.float32)  # a writable copy: torch takes it as it is

    def alias(self) -> tuple:
        """An alias_tensor's shape (version 1): where a layer's parameters sit in its one params tensor."""
        if self.int() != 1:
            raise FormatError(f"bad alias tensor at byte {self.pos}")
        return tuple(self.int() for _ in range(4))


@dataclass
class Layer:
    kind: str
    arrays: dict = field(default_factory=dict)
    settings: tuple = ()


def split_params(params: np.ndarray, shapes: list) -> list:
    """The arrays of ``shapes`` one after the other in a layer's flat params tensor."""
    flat, out, start = params.reshape(-1), [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(flat[start: start + size].reshape(shape))
        start += size
    if start != flat.size:
        raise FormatError(f"a layer's parameters hold {flat.size} values, its shapes {start}")
    return out


def read_layer(reader: Reader, kind: str) -> Layer:
    """The details of one layer, the reader just past its version string."""
    if kind == INPUT:
        means = [reader.float() for _ in range(3)]
        return Layer(kind, {"means": np.array(means, dtype=np.float32)}, (reader.int(), reader.int()))
    if kind == CONV:
        params = reader.tensor()
        settings = tuple(reader.int() for _ in range(7))  # filters, rows, columns, strides y/x, paddings y/x
        weight, bias = split_params(params, [reader.alias(), reader.alias()])
        return Layer(kind, {"weight": weight, "bias": bias.reshape(-1)}, settings)
    if kind == AFFINE:
        params = reader.tensor()
        gamma, beta = split_params(params, [reader.alias(), reader.alias()])
        return Layer(kind, {"gamma": gamma.reshape(-1), "beta": beta.reshape(-1)})
    if kind in (MAX_POOL, AVG_POOL):
        return Layer(kind, settings=tuple(reader.int() for _ in range(6)))  # rows, columns, strides, paddings
    if kind == FC:
        outputs, inputs = reader.int(), reader.int()
        params = reader.tensor()
        (weight,) = split_params(params, [reader.alias()])
        return Layer(kind, {"weight": weight.reshape(inputs, outputs)}, (outputs, inputs))
    raise FormatError(f"unknown layer {kind}")


def read_layers(data: bytes) -> list:
    """Every layer this reader knows, in the file's (forward) order. A layer starts at its version string; each is
    found by its exact bytes (a compact length, then the name), and its fields must then parse."""
    names = [INPUT, CONV, AFFINE, MAX_POOL, AVG_POOL, FC]
    marks = {bytes([1, len(name)]) + name.encode("ascii"): name for name in names}
    found = []
    for mark, name in marks.items():
        start = data.find(mark)
        while start >= 0:
            found.append((start + len(mark), name))
            start = data.find(mark, start + 1)
    layers = []
    for offset, name in sorted(found):
        layers.append(read_layer(Reader(data, offset), name))
    return layers


def check(condition, what):
    if not condition:
        raise FormatError(what)


def plan(layers: list) -> dict:
    """The network's parts from its layers, checked against the architecture above: ``means``, ``stem`` (conv,
    affine, max-pool settings), ``blocks`` ([(conv, affine, conv, affine, halves)]) and ``fc``."""
    kinds = [layer.kind for layer in layers]
    check(kinds[:4] == [INPUT, CONV, AFFINE, MAX_POOL], f"unexpected first layers {kinds[:4]}")
    check(kinds[-2:] == [AVG_POOL, FC], f"unexpected last layers {kinds[-2:]}")
    check(layers[0].settings == (INPUT_SIZE, INPUT_SIZE), f"input size {layers[0].settings}")
    blocks, i = [], 4
    while i < len(layers) - 2:
        check(i + 4 <= len(layers) - 2, f"a residual block cut short at layer {i}")
        conv_a, affine_a, conv_b, affine_b = layers[i: i + 4]
        check([conv_a.kind, affine_a.kind, conv_b.kind, affine_b.kind] == [CONV, AFFINE, CONV, AFFINE],
              f"unexpected block at layer {i}: {kinds[i: i + 4]}")
        halves = conv_a.settings[3] == 2
        i += 4
        if halves:
            pool = layers[i] if i < len(layers) - 2 else None
            check(pool and pool.kind == AVG_POOL and pool.settings[:4] == (2, 2, 2, 2), f"no 2x2 pooling at {i}")
            i += 1
        blocks.append((conv_a, affine_a, conv_b, affine_b, halves))
    check(blocks, "no residual blocks")
    fc = layers[-1]
    check(fc.settings == (DESCRIPTOR_SIZE, blocks[-1][2].settings[0]), f"fully-connected layer {fc.settings}")
    return {"means": layers[0].arrays["means"], "stem": layers[1:4], "blocks": blocks, "fc": fc}


def build(parts: dict):
    """A torch module (eval mode, CPU) computing the 128-d descriptor of ``(N, 150, 150, 3)`` uint8 RGB chips."""
    import torch  # noqa: PLC0415 - the identity env only
    import torch.nn.functional as F  # noqa: N812, PLC0415

    def conv(layer):
        filters, rows, columns, stride_y, stride_x, pad_y, pad_x = layer.settings
        module = torch.nn.Conv2d(layer.arrays["weight"].shape[1], filters, (rows, columns), (stride_y, stride_x),
                                 (pad_y, pad_x))
        module.weight.data = torch.from_numpy(layer.arrays["weight"])
        module.bias.data = torch.from_numpy(layer.arrays["bias"])
        return module

    def affine(layer):
        return (torch.from_numpy(layer.arrays["gamma"]).view(1, -1, 1, 1),
                torch.from_numpy(layer.arrays["beta"]).view(1, -1, 1, 1))

    def add_padded(a, b):
        """dlib's add_prev: the sum over the larger shape, each tensor zero outside its own."""
        k, h, w = (max(x, y) for x, y in zip(a.shape[1:], b.shape[1:]))
        return sum(F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, k - t.shape[1])) for t in (a, b))

    class FaceResNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            stem_conv, stem_affine, pool = parts["stem"]
            self.stem = conv(stem_conv)
            self.stem_scale, self.stem_shift = affine(stem_affine)
            self.pool = pool.settings
            self.convs = torch.nn.ModuleList(conv(layer) for block in parts["blocks"] for layer in block[0:3:2])
            self.affines = [affine(layer) for block in parts["blocks"] for layer in block[1:4:2]]
            self.halves = [block[4] for block in parts["blocks"]]
            self.fc = torch.from_numpy(parts["fc"].arrays["weight"])
            self.means = torch.from_numpy(parts["means"]).view(1, 3, 1, 1)

        def forward(self, chips):
            x = (chips.permute(0, 3, 1, 2).float() - self.means) / 256.0
            x = torch.relu(self.stem(x) * self.stem_scale + self.stem_shift)
            rows, columns, stride_y, stride_x, pad_y, pad_x = self.pool
            x = F.max_pool2d(x, (rows, columns), (stride_y, stride_x), (pad_y, pad_x))
            for b, halves in enumerate(self.halves):
                (scale_a, shift_a), (scale_b, shift_b) = self.affines[2 * b: 2 * b + 2]
                y = torch.relu(self.convs[2 * b](x) * scale_a + shift_a)
                y = self.convs[2 * b + 1](y) * scale_b + shift_b
                x = torch.relu(add_padded(y, F.avg_pool2d(x, 2, 2) if halves else x))
            return x.mean(dim=(2, 3)) @ self.fc

    return FaceResNet().eval()


def load(path):
    """The network of dlib's ``.dat`` file at ``path`` as a torch module (see :func:`build`)."""
    with open(path, "rb") as handle:
        data = handle.read()
    return build(plan(read_layers(data)))


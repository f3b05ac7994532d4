"""Small networks shared by tests in different folders (tests/ is on sys.path through conftest.py)."""

from pathlib import Path

import torch
from torch import nn

FIXTURES = Path(__file__).parent / "fixtures"  # committed TorchScript stand-ins (make_scripted.py)


class Functional(nn.Module):
    """A model that applies its ReLU as a function, not a module."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


class TanhImageNet(nn.Module):
    """An image-to-image net (3 -> 3 channels, tanh output) such as a CycleGAN generator:
    two convolutions with a residual path, near the identity at initialisation."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 3, 3, padding=1)
        self.tanh = nn.Tanh()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x):
        # x is normalized with mean 0.5, std 0.5, i.e. in [-1, 1] like the tanh's range.
        return self.tanh(x + self.conv2(self.relu(self.conv1(x))))


class HeadsVAE(nn.Module):
    """A VAE written the common way: an encoder trunk, fc_mu / fc_logvar heads, a decoder."""

    def __init__(self, latent: int = 4):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten())
        self.fc_mu = nn.Linear(4 * 4 * 4, latent)
        self.fc_logvar = nn.Linear(4 * 4 * 4, latent)
        self.decoder = nn.Sequential(nn.Linear(latent, 4 * 4 * 4), nn.ReLU(), nn.Unflatten(1, (4, 4, 4)),
                                     nn.ConvTranspose2d(4, 1, 4, stride=2, padding=1), nn.Sigmoid())

    def forward(self, x):
        h = self.encoder(x)
        return self.decoder(self.fc_mu(h))


class EncoderOnly(nn.Module):
    """An image model with an encoder and no decoder anyone could find."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(4, 1, 1)

    def forward(self, x):
        return torch.sigmoid(self.head(self.encoder(x)))


class CausalConv1d(nn.Conv1d):
    """Padded on the left only: time t sees inputs up to t."""

    def forward(self, x):
        return super().forward(nn.functional.pad(x, (self.dilation[0] * (self.kernel_size[0] - 1), 0)))


class CausalStack(nn.Sequential):
    """WaveNet's dilated causal convolutions: kernel 2, dilations 1..16 (field 32)."""

    def __init__(self):
        torch.manual_seed(0)
        layers, c = [], 1
        for d in (1, 2, 4, 8, 16):
            layers += [CausalConv1d(c, 4, 2, dilation=d), nn.Tanh()]
            c = 4
        super().__init__(*layers)


class MaskedConv2d(nn.Conv2d):
    """PixelCNN's masked convolution in raster order: mask A hides the centre, B keeps it."""

    def __init__(self, *args, mask_type="B", **kwargs):
        super().__init__(*args, **kwargs)
        k = self.kernel_size[0]
        mask = torch.ones_like(self.weight)
        mask[:, :, k // 2, k // 2 + (mask_type == "B"):] = 0
        mask[:, :, k // 2 + 1:] = 0
        self.register_buffer("mask", mask)

    def forward(self, x):
        return nn.functional.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class MaskedStack(nn.Sequential):
    """A plain PixelCNN's masked convolutions (5x5 mask A, then 3x3 mask B): strictly causal,
    with a blind spot."""

    def __init__(self):
        torch.manual_seed(0)
        super().__init__(MaskedConv2d(1, 8, 5, padding=2, mask_type="A"), nn.ReLU(),
                         *[m for _ in range(3) for m in (MaskedConv2d(8, 8, 3, padding=1), nn.ReLU())])


class TinyPixelCNN(nn.Module):
    """Masked convolutions to 5 levels per pixel: a PixelCNN-style model for sampling tests."""

    def __init__(self, levels: int = 5):
        super().__init__()
        torch.manual_seed(0)
        self.stack = MaskedStack()
        self.head = nn.Conv2d(8, levels, 1)

    def forward(self, x):
        return self.head(self.stack(x))


class FixedLevels(nn.Module):
    """Every pixel's levels distributed as softmax(bias), whatever came before: the sampler's
    frequencies must match it."""

    def __init__(self):
        super().__init__()
        self.mask = MaskedConv2d(1, 4, 3, padding=1, mask_type="A")
        self.bias = nn.Parameter(torch.tensor([0.0, 1.0, 2.0, -1.0]))

    def forward(self, x):
        return 0 * self.mask(x) + self.bias.reshape(1, -1, 1, 1)


class Tiny1D(nn.Module):
    """A 1-D classifier: dilated Conv1d layers, global pooling, three classes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv1d(1, 8, 5, padding=2)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv1d(8, 8, 3, padding=2, dilation=2)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(self.pool(self.relu2(self.conv2(self.relu1(self.conv1(x))))).flatten(1))


class RegisterViT(nn.Module):
    """A one-block vision transformer on non-square 1 x 24 x 32 pictures: 4 x 4 patches (a 6 x 8
    grid), a CLS token and four register tokens before the patches, as DINOv2 with registers."""

    def __init__(self, dim: int = 16, classes: int = 5):
        super().__init__()
        torch.manual_seed(0)
        self.patch_embed = nn.Conv2d(1, dim, 4, stride=4)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.registers = nn.Parameter(torch.randn(1, 4, dim))
        self.pos_embed = nn.Parameter(0.1 * torch.randn(1, 48, dim))
        self.block = nn.TransformerEncoderLayer(dim, 2, 32, dropout=0.0, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
        b = tokens.shape[0]
        tokens = torch.cat([self.cls_token.expand(b, -1, -1), self.registers.expand(b, -1, -1), tokens], 1)
        return self.head(self.norm(self.block(tokens))[:, 0])


class ScriptedPart(nn.Module):
    """An eager 1-D model holding a TorchScript part (a scripted voice-activity stage, say):
    hooks cannot attach to the part, so it is one opaque layer."""

    def __init__(self):
        super().__init__()
        self.pre = nn.Conv1d(1, 4, 3)
        # Scripted once into a committed file (fixtures/make_scripted.py): torch warns on every
        # torch.jit.script call, and a user's scripted part comes as a file, not as source.
        self.vad = torch.jit.load(str(FIXTURES / "scripted_part.pt"))
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.vad(self.pre(x)).mean(2))


class NeedsRate(nn.Module):
    """A 1-D model whose forward takes the sample rate besides the input (a voice-activity
    model's ``forward(x, sr)``), and an optional gain."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 5)
        self.fc = nn.Linear(4, 2)

    def forward(self, x, sr: int, gain: float = 1.0):
        return self.fc(self.conv(x).mean(2)) * (sr / 16000.0) * gain


class ThreeHeads(nn.Module):
    """A face detector's stage as MTCNN's RNet/ONet: box offsets (4), landmarks (10) and a face
    probability (2) from a Softmax module, in that order."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.PReLU(8), nn.Conv2d(8, 16, 3, stride=2),
                                      nn.PReLU(16), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.boxes = nn.Linear(64, 4)
        self.landmarks = nn.Linear(64, 10)
        self.face = nn.Linear(64, 2)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        f = self.features(x)
        return self.boxes(f), self.landmarks(f), self.softmax(self.face(f))


def tiny_detector(score_thresh: float = 0.0):
    """A torchvision Faster R-CNN on a two-convolution backbone, random weights, 64-pixel inputs:
    the real detection code (transform, RPN, ROI heads, post-processing) at a test's cost."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1),
                             nn.ReLU())
    backbone.out_channels = 16
    anchors = AnchorGenerator(sizes=((8, 16, 24),), aspect_ratios=((0.5, 1.0, 2.0),))
    pooler = MultiScaleRoIAlign(featmap_names=["0"], output_size=4, sampling_ratio=2)
    model = FasterRCNN(backbone, num_classes=5, rpn_anchor_generator=anchors, box_roi_pool=pooler,
                       min_size=64, max_size=64, box_score_thresh=score_thresh, box_detections_per_img=20,
                       representation_size=32)
    return model


def detector_with_none_above():
    """The same detector with a threshold nothing reaches (5 classes: scores near 0.2)."""
    return tiny_detector(score_thresh=0.99)


class TimeOnly(nn.Module):
    """A 1-D model without a Conv1d taking (batch, time) windows, as a wrapper around a
    voice-activity net often is: frames by unfold, a linear layer, two classes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.frame = nn.Linear(32, 8)
        self.act = nn.ReLU()
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        frames = x.unfold(1, 32, 16)  # (batch, frames, 32): fails on (batch, channels, time)
        return self.fc(self.act(self.frame(frames)).mean(1))


class SpeechProbability(nn.Module):
    """One sigmoid per window (a speech probability), from a Conv1d: what the Signals tab plots
    as a timeline with a threshold line."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv1d(1, 4, 9, padding=4)
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        energy = self.conv(x).pow(2).mean(2)
        return torch.sigmoid(self.fc(energy) * 4 - 1)


class TwoLogits(nn.Module):
    """Two outputs and no softmax or sigmoid: nothing says which is the prediction."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3)
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(4, 6)

    def forward(self, x):
        f = self.conv(x).mean((2, 3))
        return self.a(f), self.b(f)


class SigmoidPerClass(nn.Module):
    """A dict of features and a functional sigmoid per class (several may be present),
    reshaped after the sigmoid."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 6, 3)
        self.fc = nn.Linear(6, 4)

    def forward(self, x):
        f = self.conv(x).mean((2, 3))
        return {"features": f, "present": torch.sigmoid(self.fc(f) * 3).view(-1, 4)}


class ColourNet(nn.Module):
    """Four colours (red, green, blue, yellow) in 16x16 pictures: the doctor's preprocessing check
    trains it on RGB or on BGR input."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).mean((2, 3)))


class BNDigits(nn.Module):
    """The 8x8 digits through two convolutions with BatchNorm: the doctor's running-statistics check."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1, self.bn1, self.relu1 = nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU()
        self.conv2, self.bn2, self.relu2 = nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU()
        self.conv3, self.bn3, self.relu3 = nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU()
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.relu3(self.bn3(self.conv3(x)))
        return self.fc(x.mean((2, 3)))


class Sqrt(nn.Module):
    def forward(self, x):
        return torch.sqrt(x)


class SqrtOfConv(nn.Module):
    """A square root of a signed convolution output: NaN from there on (the doctor's first_nonfinite)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.sqrt = Sqrt()
        self.conv3 = nn.Conv2d(8, 8, 3, padding=1)
        self.relu3 = nn.ReLU()
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.sqrt(self.conv2(self.relu1(self.conv1(x))))
        return self.fc(self.relu3(self.conv3(x)).mean((2, 3)))

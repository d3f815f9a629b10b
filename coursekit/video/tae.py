"""A toy temporal autoencoder (TAE): clips ``x`` (B, T, H, W) ↔ latents ``z`` (B, C, T/2, H/4, W/4).

Like MovieGen's TAE it is an image autoencoder "inflated" to video: 2-D convolutions act on
each frame (space ×4 down/up) and 1-D convolutions along time (time ×2 down/up) are added
between them — a (2+1)-D design. It has no normalisation across time, so it is local in
time: the output at frame t only depends on a few neighbouring frames. That locality is
what makes *tiled* inference (:func:`tiled_encode`, :func:`tiled_decode`) exact away from the
seams: long clips are cut into overlapping temporal tiles whose outputs are blended there.

Training loss: ``BCE(x̂, x) + λ · OPL(z)`` (MSE and PSNR are reported), with MovieGen's outlier penalty loss
``OPL(z) = mean(max(|z − mean z| − r·std z, 0))``, which discourages a few latent values from
growing huge (they make decoded videos blotchy and the latent flow harder to learn).
Taught in: notebook 09.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..core.checks import positive_int


def _check_clips(x: Tensor, time_factor: int, space_factor: int) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"clips must be a floating-point torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"clips must have shape (batch, T, H, W), got {tuple(x.shape)}")
    _, t, h, w = x.shape
    if t % time_factor or h % space_factor or w % space_factor:
        raise ValueError(f"clip shape (T, H, W) = {(t, h, w)} must be divisible by "
                         f"({time_factor}, {space_factor}, {space_factor})")


class TemporalAutoencoder(nn.Module):
    """(2+1)-D convolutional autoencoder: ×2 compression in time, ×4 in height and width.

    ``encode(x)`` maps clips (B, T, H, W) in [0, 1] to latents (B, C, T/2, H/4, W/4);
    ``decode(z)`` maps them back (values in [0, 1] through a sigmoid).
    """

    time_factor = 2
    space_factor = 4

    def __init__(self, latent_channels: int = 4, width: int = 32):
        super().__init__()
        positive_int(latent_channels, "latent_channels")
        if positive_int(width, "width") % 16:  # GroupNorm(8, width // 2) needs width // 2 divisible by 8
            raise ValueError(f"width must be a multiple of 16, got {width}")
        c1, c2 = width // 2, width
        self.latent_channels = latent_channels
        self.config = {"latent_channels": latent_channels, "width": width}
        # Encoder: pixel-unshuffle (2×2 pixels → 4 channels: cheap on a CPU), per-frame 2-D
        # convs (space ÷4 in all), then a strided temporal conv (time ÷2). GroupNorm only in
        # the per-frame part: it normalises each frame on its own, so locality in time holds.
        self.enc2d = nn.Sequential(
            nn.PixelUnshuffle(2),
            nn.Conv2d(4, c2, 3, padding=1), nn.GroupNorm(8, c2), nn.SiLU(),
            nn.Conv2d(c2, c2, 4, stride=2, padding=1), nn.GroupNorm(8, c2), nn.SiLU(),
            nn.Conv2d(c2, c2, 3, padding=1), nn.SiLU(),
        )
        self.enc_time = nn.Sequential(
            nn.Conv3d(c2, c2, (4, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0)), nn.SiLU(),
            nn.Conv3d(c2, latent_channels, 3, padding=1),
        )
        # Decoder: the mirror image (temporal transposed conv first, then per-frame 2-D).
        self.dec_time = nn.Sequential(
            nn.Conv3d(latent_channels, c2, 3, padding=1), nn.SiLU(),
            nn.ConvTranspose3d(c2, c2, (4, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0)), nn.SiLU(),
        )
        self.dec2d = nn.Sequential(
            nn.Conv2d(c2, c2, 3, padding=1), nn.GroupNorm(8, c2), nn.SiLU(),
            nn.ConvTranspose2d(c2, c2, 4, stride=2, padding=1), nn.GroupNorm(8, c2), nn.SiLU(),
            nn.Conv2d(c2, c1, 3, padding=1), nn.GroupNorm(8, c1), nn.SiLU(),
            nn.Conv2d(c1, 4, 3, padding=1),
            nn.PixelShuffle(2),
        )
        # Start from an almost black canvas (sigmoid(-3) ≈ 0.05): MNIST frames are mostly
        # background, and this skips the long phase where the decoder learns just that.
        nn.init.constant_(self.dec2d[-2].bias, -3.0)

    def latent_shape(self, n_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """``(C, T/2, H/4, W/4)`` for clips of ``(T, H, W)``."""
        return (self.latent_channels, n_frames // self.time_factor,
                height // self.space_factor, width // self.space_factor)

    def encode(self, x: Tensor) -> Tensor:
        """Clips (B, T, H, W) → latents (B, C, T/2, H/4, W/4)."""
        _check_clips(x, self.time_factor, self.space_factor)
        b, t, h, w = x.shape
        y = self.enc2d(x.reshape(b * t, 1, h, w))  # frames go into the batch: 2-D convs
        y = y.reshape(b, t, *y.shape[1:]).transpose(1, 2)  # (B, C, T, h, w) for the time convs
        return self.enc_time(y)

    def decode_logits(self, z: Tensor) -> Tensor:
        """Latents (B, C, T', h, w) → pre-sigmoid clips (B, 2T', 4h, 4w)."""
        if not isinstance(z, Tensor) or z.ndim != 5 or z.shape[1] != self.latent_channels:
            raise ValueError(f"latents must have shape (batch, {self.latent_channels}, T', h, w), "
                             f"got {tuple(getattr(z, 'shape', ()))}")
        y = self.dec_time(z)  # (B, C, T, h, w)
        b, c, t, h, w = y.shape
        y = self.dec2d(y.transpose(1, 2).reshape(b * t, c, h, w))
        return y.reshape(b, t, *y.shape[2:])

    def decode(self, z: Tensor) -> Tensor:
        """Latents (B, C, T', h, w) → clips (B, 2T', 4h, 4w) in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(x̂, z)``: the reconstruction and the latent."""
        z = self.encode(x)
        return self.decode(z), z


def outlier_penalty(z: Tensor, r: float = 3.0) -> Tensor:
    """MovieGen's outlier penalty loss: mean over entries of ``max(|z − μ| − r σ, 0)``,
    with μ, σ the per-channel mean and std over the batch, time and space."""
    dims = [d for d in range(z.ndim) if d != 1]
    mu, sigma = z.mean(dim=dims, keepdim=True), z.std(dim=dims, keepdim=True)
    return F.relu((z - mu).abs() - r * sigma).mean()


def tae_loss(tae: TemporalAutoencoder, x: Tensor, opl_weight: float = 0.1) -> dict[str, Tensor]:
    """``{"loss", "bce", "mse", "opl"}`` for a batch of clips: reconstruction BCE + λ·outlier penalty."""
    z = tae.encode(x)
    logits = tae.decode_logits(z)
    # Binary cross-entropy on the logits: with ~3 % ink per frame, plain MSE gets stuck at the
    # all-black clip for a long time; BCE keeps a strong gradient on the few bright pixels.
    bce = F.binary_cross_entropy_with_logits(logits, x)
    mse = F.mse_loss(torch.sigmoid(logits), x)
    opl = outlier_penalty(z)
    return {"loss": bce + opl_weight * opl, "bce": bce, "mse": mse, "opl": opl}


def psnr(x_hat: Tensor, x: Tensor, peak: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio in dB per clip: ``10 log10(peak² / MSE)`` (batch,)."""
    if x_hat.shape != x.shape:
        raise ValueError(f"x_hat and x must have the same shape, got {tuple(x_hat.shape)} and {tuple(x.shape)}")
    mse = (x_hat - x).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(peak**2 / mse.clamp_min(1e-12))


def compression_ratio(tae: TemporalAutoencoder, n_frames: int = 16, size: int = 32) -> float:
    """Pixels per latent value: ``T·H·W / (C·T'·h·w)``."""
    return n_frames * size * size / math.prod(tae.latent_shape(n_frames, size, size))


# --- Tiled inference along time ("variable length encoding / decoding") ---------------------


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start indices of tiles of ``tile`` frames, consecutive ones sharing ``overlap`` frames;
    the last tile is aligned to the end (so it may share more)."""
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must satisfy 0 <= overlap < tile = {tile}, got {overlap}")
    if length < tile:
        raise ValueError(f"length {length} is shorter than one tile ({tile})")
    stride = tile - overlap
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def seam_weights(tile: int, ramp: int, first: bool, last: bool, blend: bool = True) -> Tensor:
    """Weights (tile,) of one output tile: ramps of ``ramp`` frames where it overlaps a
    neighbour — linear (``blend=True``) or a hard cut at the ramp's middle (``blend=False``)."""
    w = torch.ones(tile)
    if ramp > 0:
        i = torch.arange(ramp, dtype=torch.float32)
        up = (i + 1) / (ramp + 1) if blend else (i >= ramp / 2).float()
        if not first:
            w[:ramp] = up
        if not last:
            w[tile - ramp:] = up.flip(0) if blend else (i < ramp / 2).float()
    return w


def tiled_apply(fn, x: Tensor, tile: int, overlap: int, factor: int | float, in_dim: int, out_dim: int,
                blend: bool = True) -> Tensor:
    """Apply ``fn`` to overlapping tiles of ``x`` along time and stitch the outputs.

    ``fn`` maps ``tile`` frames (along ``in_dim``) to ``tile · factor`` frames (along
    ``out_dim``); output tiles are summed with :func:`seam_weights` and divided by the
    total weight, so every output frame is a convex combination of the tiles that cover it.
    """
    length = x.shape[in_dim]
    if length <= tile:
        return fn(x)
    starts = tile_starts(length, tile, overlap)
    out_tile, out_ramp, out_len = round(tile * factor), round(overlap * factor), round(length * factor)
    out, total = None, torch.zeros(out_len, device=x.device)
    for k, s in enumerate(starts):
        y = fn(x.narrow(in_dim, s, tile))
        if y.shape[out_dim] != out_tile:
            raise ValueError(f"fn returned {y.shape[out_dim]} frames on dim {out_dim}, expected {out_tile}")
        w = seam_weights(out_tile, out_ramp, k == 0, k == len(starts) - 1, blend).to(x.device)
        if out is None:
            shape = list(y.shape)
            shape[out_dim] = out_len
            out = y.new_zeros(shape)
        view = [1] * y.ndim
        view[out_dim] = out_tile
        o = round(s * factor)
        out.narrow(out_dim, o, out_tile).add_(y * w.reshape(view).to(y.dtype))
        total[o:o + out_tile] += w
    view = [1] * out.ndim
    view[out_dim] = out_len
    return out / total.reshape(view).to(out.dtype)


@torch.no_grad()
def tiled_encode(tae: TemporalAutoencoder, x: Tensor, tile: int = 16, overlap: int = 8,
                 blend: bool = True) -> Tensor:
    """Encode a clip longer than the training length, ``tile`` frames at a time."""
    _check_clips(x, tae.time_factor, tae.space_factor)
    if tile % tae.time_factor or overlap % tae.time_factor:
        raise ValueError(f"tile and overlap must be multiples of {tae.time_factor}, got {tile}, {overlap}")
    return tiled_apply(tae.encode, x, tile, overlap, 1 / tae.time_factor, 1, 2, blend)


@torch.no_grad()
def tiled_decode(tae: TemporalAutoencoder, z: Tensor, tile: int = 8, overlap: int = 4,
                 blend: bool = True) -> Tensor:
    """Decode long latents (B, C, T', h, w) ``tile`` latent frames at a time → (B, 2T', H, W)."""
    return tiled_apply(tae.decode, z, tile, overlap, tae.time_factor, 2, 1, blend)


__all__ = ["TemporalAutoencoder", "compression_ratio", "outlier_penalty", "psnr", "seam_weights",
           "tae_loss", "tile_starts", "tiled_apply", "tiled_decode", "tiled_encode"]

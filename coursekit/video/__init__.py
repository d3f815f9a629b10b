"""Lesson 09: a toy MovieGen / Goku pipeline — temporal autoencoder, latent flow matching
with a small transformer, tiled decoding of long clips. Taught in: notebook 09.

    from coursekit.video.tae import TemporalAutoencoder, tiled_decode
    from coursekit.video.dit import LatentDiT
    from coursekit.video.pipeline import load_pretrained, generate
"""

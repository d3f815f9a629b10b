"""Lesson 09: a toy MovieGen / Goku pipeline — temporal autoencoder, latent flow matching
with a small transformer, tiled encoding / decoding of long clips. Taught in: notebook 09.

    from coursekit.data.clips import moving_digits              # the data
    from coursekit.video.tae import TemporalAutoencoder, tiled_decode
    from coursekit.video.dit import LatentDiT
    from coursekit.video.pipeline import load_video_model        # the shipped checkpoint
    clips = load_video_model().generate(8, n_steps=16)           # (8, 16, 32, 32) in [0, 1]
"""

"""Lesson 09's model: a toy MovieGen / Goku generator — temporal autoencoder, a small latent
transformer trained by flow matching, tiled encoding / decoding of long clips.
Taught in: notebook 09.

* :mod:`coursekit.video.tae` — ``TemporalAutoencoder``, its loss, PSNR, tiled inference;
* :mod:`coursekit.video.dit` — ``LatentDiT``, the field ``v_θ(t, z)`` on latents;
* :mod:`coursekit.video.latent` — ``LatentNormalizer``, ``rectified_flow_loss``, ``VideoModel``.

Training, the shipped checkpoint and timing are lesson recipes (:mod:`coursekit.lessons.video`)::

    from coursekit.lessons import load_model
    model = load_model("video_toy.pt").model            # a VideoModel
    clips = model.generate(8, n_steps=16)               # (8, 16, 32, 32) in [0, 1]
"""

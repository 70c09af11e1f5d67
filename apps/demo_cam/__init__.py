"""The webcam demo: live top-k action labels over a camera, a video file or a stream, torch-free.

Run ``python apps/demo_cam/main.py --help`` (or ``edgevc demo --help``). It
imports only ``edgevc.runtime``, ``edgevc.sampling``, ``edgevc.video``,
``edgevc.spec`` (and ``edgevc.errors`` beneath them), numpy, OpenCV, PyAV
and the standard library's tkinter: what a Raspberry Pi or a Jetson needs
to adapt it is numpy, one backend runtime and a decoder.
"""

"""Installs l2t_tf: Learning to Teach with Dynamic Loss Networks in TensorFlow/Keras."""
import os
import re

import setuptools


def _version():
  """l2t_tf.__version__, read without importing the package."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "l2t_tf",
                      "__init__.py")
  with open(path) as f:
    return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


setuptools.setup(
    name="l2t_tf",
    version=_version(),
    description=("TensorFlow/Keras implementation of Learning to Teach with "
                 "Dynamic Loss Networks (L2T-DLN, NeurIPS 2023)."),
    # The experiments' gin files live in the top-level gin_configs/ and are
    # installed as l2t_tf/gin_configs, found by name (l2t_tf/config.py).
    packages=setuptools.find_packages(include=["l2t_tf", "l2t_tf.*"]) + [
        "l2t_tf.gin_configs"],
    package_dir={"l2t_tf.gin_configs": "gin_configs"},
    package_data={"l2t_tf.gin_configs": ["*.gin"]},
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16,<2.22",
        # keras.utils.bounding_boxes (box formats, IoU); keras-hub 0.32
        # needs 3.15 anyway.
        "keras>=3.15,<3.16",
        # TF 2.21 no longer pulls it in; tf.summary needs it.
        "tensorboard",
        "tensorflow-datasets>=4.9",
        # Darknet-53 of the YOLOv3 student (keras-cv's maintained successor;
        # builds offline with random weights, presets are never fetched).
        "keras-hub>=0.32,<0.33",
        "absl-py",
        "gin-config>=0.5",
        # The embedded default data set (digits) ships with scikit-learn.
        "scikit-learn",
        # tensorflow-datasets imports it without declaring it.
        "importlib-resources",
        # Figures (loss surfaces, tables) where a person would rather look.
        "matplotlib",
        # Progress bars on stderr.
        "tqdm",
        # COCO mAP is computed with the reference implementation (COCOeval).
        "pycocotools",
        # VOC/SBD segmentation data: SBD masks are .mat files, VOC masks
        # palette PNGs.
        "scipy",
        "Pillow",
    ],
    extras_require={
        # ruff: the lint step of .ci/run (config in pyproject.toml), pinned
        # so a new release's rules cannot fail CI on unchanged code.
        "test": ["pytest>=7", "psutil", "ruff==0.17.6"],
        # tools/benchmark_torch_peer.py and tests/test_torch_peer.py only;
        # the package never imports torch.
        "peer": ["torch==2.13.0"],
    },
)

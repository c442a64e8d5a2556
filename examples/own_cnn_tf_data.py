"""L2T-DLN on one's own subclassed Keras CNN and a tf.data image pipeline.

Shows that `l2t_tf.teach` takes any Keras model and a `tf.data.Dataset`:

* the student is a *subclassed* `keras.Model` (a small CNN) using Keras'
  own `keras.layers.BatchNormalization`, which `teach` makes exact for the
  unrolled hypergradient automatically (its CE twin is a new instance made
  from the model's config);
* the data are scikit-learn's digits (1797 images of 8 x 8 pixels, 10
  classes; shipped with scikit-learn, no download) as a *batched*
  `tf.data.Dataset` of (image [8, 8, 1], label) pairs, with a fixed test
  split;
* with `--augment`, training augmentation is given as `augment=`: a
  random shift of up to one pixel (zero padding and a crop) of each image,
  from the stateless seed the teaching loop passes, so a resumed run sees
  the same images. (On 8 x 8 digits a pixel is an eighth of the image: the
  students then need more teacher epochs to reach the same accuracy.)

The script prints the taught student's and its CE twin's test accuracy.
The BatchNormalization layers use momentum 0.9 rather than Keras' 0.99: at
the recipe's learning rate of 0.1, a few hundred steps are too few for
moving statistics that slow, and the test accuracy (inference mode) would
lag far behind the model's.

Run (about a minute and a half on 2 CPU cores):

  python examples/own_cnn_tf_data.py
  python examples/own_cnn_tf_data.py --augment --teacher_epochs=6
  python examples/own_cnn_tf_data.py --tiny       # a quick check
"""
import argparse
import math
import os
import sys

import l2t_tf  # First: it imports TensorFlow quietly.
import keras
import numpy as np
from sklearn import datasets
import tensorflow as tf

# The budget of a tiny run (tests/test_examples.py).
TINY = dict(unroll_length=2, teacher_epochs=1, rounds_per_epoch=4,
            batch_size=10, validation_batch_size=20,
            rounds_per_validation_batch=1)


class SmallCNN(keras.Model):
  """Conv-BN-ReLU twice, global average pooling, logits [B, num_classes].

  Its constructor takes plain values only, so Keras records them and
  `from_config` can make the CE twin.
  """

  def __init__(self, num_classes=10, width=16, **kwargs):
    super().__init__(**kwargs)
    self.num_classes, self.width = num_classes, width
    self.conv1 = keras.layers.Conv2D(width, 3, padding="same",
                                     use_bias=False)
    self.bn1 = keras.layers.BatchNormalization(momentum=0.9)
    self.conv2 = keras.layers.Conv2D(2 * width, 3, strides=2, padding="same",
                                     use_bias=False)
    self.bn2 = keras.layers.BatchNormalization(momentum=0.9)
    self.pool = keras.layers.GlobalAveragePooling2D()
    self.head = keras.layers.Dense(num_classes)

  def call(self, x, training=False):
    x = keras.ops.relu(self.bn1(self.conv1(x), training=training))
    x = keras.ops.relu(self.bn2(self.conv2(x), training=training))
    return self.head(self.pool(x))


def load_data(seed, test_fraction=0.2, batch_size=64):
  """(train, test): batched tf.data Datasets of (image [8, 8, 1], label)."""
  images, labels = datasets.load_digits(return_X_y=True)
  images = (images / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)
  order = np.random.default_rng(seed).permutation(len(labels))
  n_test = int(round(test_fraction * len(labels)))
  test, train = order[:n_test], order[n_test:]

  def dataset(index):
    # One pass, in a fixed order: the teaching loop shuffles and splits it.
    return tf.data.Dataset.from_tensor_slices(
        (images[index], labels[index].astype(np.int32))).batch(batch_size)
  return dataset(train), dataset(test)


def random_shift(image, label, seed):
  """Shifts one image by up to a pixel each way (stateless, from `seed`)."""
  padded = tf.pad(image, [[1, 1], [1, 1], [0, 0]])
  return tf.image.stateless_random_crop(padded, tf.shape(image), seed), label


def parse_args(argv=None):
  parser = argparse.ArgumentParser(
      description=__doc__.split("\n\n", 1)[0],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument(
      "--model_dir",
      default=os.path.join("runs", "examples", "own_cnn_tf_data"),
      help="where the run lives: checkpoints, results.json, the exported DLN "
      "(default: %(default)s)")
  parser.add_argument("--teacher_epochs", type=int, default=2,
                      help="teacher epochs (default: %(default)s)")
  parser.add_argument("--seed", type=int, default=0,
                      help="seed of the split and the model")
  parser.add_argument("--augment", action="store_true",
                      help="augment the training images by a random shift")
  parser.add_argument("--tiny", action="store_true",
                      help="a tiny budget (1 teacher epoch of 4 short "
                      "rounds), for the tests")
  return parser.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  train, test = load_data(args.seed)
  keras.utils.set_random_seed(args.seed)
  model = SmallCNN(num_classes=10)
  if args.tiny:
    settings = dict(TINY)
  else:
    settings = dict(teacher_epochs=args.teacher_epochs, unroll_length=5,
                    batch_size=25, validation_batch_size=100,
                    rounds_per_validation_batch=5)
  result = l2t_tf.teach(model, train, test_data=test,
                        model_dir=args.model_dir, seed=args.seed,
                        augment=random_shift if args.augment else None,
                        progress=not args.tiny and sys.stderr.isatty(),
                        **settings)
  taught = result.results["test_accuracy"]
  twin = result.results["comparison_test_accuracy"]
  # teach() swapped Keras' BatchNormalization for the exact one, in place.
  norms = {f"{type(layer).__module__}.{type(layer).__name__}"
           for layer in result.student.layers
           if isinstance(layer, keras.layers.BatchNormalization)}
  print(f"digits: a subclassed {type(result.student).__name__} and its CE "
        f"twin {type(result.ce_student).__name__}; augmentation "
        f"{'on' if args.augment else 'off'}; BatchNormalization now "
        f"{', '.join(sorted(norms))}")
  print(f"test accuracy, taught by the DLN: {taught:.4f}")
  print(f"test accuracy, CE twin:           {twin:.4f}")
  print(f"per teacher epoch (taught): "
        f"{[round(a, 4) for a in result.history['test_accuracy']]}")
  print(f"rounds: {result.results['rounds_done']}, "
        f"time: {result.results['train_time_s']:.1f} s")
  print(f"learned DLN: {result.results['dln_export_path']}")
  if not (math.isfinite(taught) and math.isfinite(twin)):
    sys.exit("a test accuracy is not finite")


if __name__ == "__main__":
  try:
    main()
  except l2t_tf.UserError as e:  # A mistake in the input: one line.
    sys.exit(f"error: {e}")

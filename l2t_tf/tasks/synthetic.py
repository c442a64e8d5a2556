"""Classification of random images: a task for benchmarks and tests.

`ClassificationTask` on `data.synthetic.SyntheticImages` (x ~ N(0, 1),
uniform labels): the student, the pairwise DLN, the losses and the metrics
of classification, with no data set to download. The benchmarks
(`tools/benchmark_hypergrad.py`) and the PyTorch cross-check
(`tests/test_hypergradient_torch_peer.py`) feed their own batches, drawn with
`task.data.batch` / `task.data.examples`; `training_set()` and `test_set()`
are fixed random examples, so the task can also drive the `Trainer`.
"""
from l2t_tf import dln as dln_lib
from l2t_tf.data import synthetic
from l2t_tf.students import cifar_resnet
from l2t_tf.tasks import classification


class SyntheticImageTask(classification.ClassificationTask):
  """Classification of random images of `input_shape` into `num_classes`.

  Args:
    input_shape: (H, W, channels) of an image; the student's input.
    num_classes: C, the student's logits are [B, C].
    student: factory (input_shape, num_classes, dtype) -> Keras model;
      default the CIFAR ResNet8 of width 16.
    dln: factory (dtype) -> DLN layer.
    dtype: float dtype of the student, the DLN and the images (None: Keras'
      default, float32 images).
    seed: seed of the training and test examples.
    size: training examples; test_size: test examples.
  """

  def __init__(self, input_shape=(32, 32, 3), num_classes=10,
               student=cifar_resnet.cifar_resnet,
               dln=dln_lib.classification_dln, dtype=None, seed=0, size=1000,
               test_size=200):
    super().__init__(
        dataset=synthetic.SyntheticImages(input_shape, num_classes, dtype,
                                          seed, size, test_size),
        student=student, dln=dln, dtype=dtype)

"""Small, fast teaching set-ups on digits shared by the trainer tests."""
import functools

import gin
import keras
import tensorflow as tf

from l2t_tf import trainer as trainer_lib
from l2t_tf.students import digits_cnn
from l2t_tf.tasks import classification

TINY = dict(unroll_length=2, teacher_epochs=2, batch_size=10,
            validation_batch_size=50, rounds_per_epoch=3, progress=False,
            eval_batch_size=400)


def dense_student(input_shape, num_classes, dtype=None):
  """A BatchNorm-free student (replicas then compute identical steps)."""
  return keras.Sequential([
      keras.Input(input_shape, dtype=dtype), keras.layers.Flatten(dtype=dtype),
      keras.layers.Dense(16, activation="tanh", dtype=dtype),
      keras.layers.Dense(num_classes, dtype=dtype)])


def tiny_task(student=None, **kwargs):
  student = student or functools.partial(digits_cnn.digits_cnn,
                                         widths=(4, 8, 8))
  return classification.ClassificationTask(dataset="digits", student=student,
                                           **kwargs)


def tiny_trainer(model_dir, task=None, strategy=None, **overrides):
  gin.clear_config()
  settings = dict(TINY, **overrides)
  return trainer_lib.Trainer(task or tiny_task(), model_dir,
                             strategy or tf.distribute.get_strategy(),
                             **settings)


def state_of(trainer):
  """All learned values: students, DLN, teacher, LSTM state, counters."""
  return [v.numpy() for v in trainer.checkpoint_variables()]


class SpyTrainer(trainer_lib.Trainer):
  """The real Trainer, keeping its initial DLN weights for comparison.

  Patch it in for `l2t_tf.train_eval.trainer_lib.Trainer`; the last one built
  is `SpyTrainer.instances[-1]`.
  """
  instances = []

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.initial_dln = [v.numpy() for v in self.dln.trainable_variables]
    SpyTrainer.instances.append(self)

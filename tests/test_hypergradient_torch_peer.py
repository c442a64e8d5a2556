"""Float64 cross-check of our hypergradient against an independent PyTorch one.

The PyTorch peer (`tools/benchmark_torch_peer.py`: `torch.func`
functional_call + autograd.grad(create_graph=True), no hand-written
derivatives) and ours, on the same weights and batches:

* the peer's ResNet8 is ours (width 2, 8x8 inputs; stride-2 "same" padding,
  BatchNorm, shortcuts): logits, batch statistics and the CE gradient;
* de_val/dphi after N = 3 SGD steps of a tiny conv + BatchNorm student
  agrees to 1e-10 (both of our modes, e_val with BatchNorm in training
  mode), and so does one full teaching round (stages I-III: e_1, e_2,
  phi_1, theta_2N, the LSTM teacher's gradient and its Adam step);
* a student with Keras' own BatchNorm (exact in first order only) has the
  same e_val but a hypergradient > 1e-7 off: the check catches a wrong one.

Traced graphs are kept small (one convolution) so that the file runs in
seconds. Skipped without PyTorch.
"""
import math
import unittest

import keras
import numpy as np
import tensorflow as tf

from l2t_tf import dln as dln_lib
from l2t_tf import dln_updaters
from l2t_tf import hypergradient
from l2t_tf import rounds as rounds_lib
from l2t_tf.students import batch_norm
from l2t_tf.students import cifar_resnet
from l2t_tf.tasks import synthetic

try:
  import torch  # pylint: disable=g-import-not-at-top
except ImportError:
  torch = None

N, BATCH, VAL, SIZE, CLASSES = 3, 4, 6, 8, 3
# Exact in float32: `L2TRound` casts its Python learning rate through a
# float32 tensor (tf.cast(0.1, tf.float64) is 0.10000000149...).
LR = 0.125
RTOL = 1e-10
# Random 8x8 images: the round uses the task's losses; `_data` its draws.
TASK = synthetic.SyntheticImageTask(input_shape=(SIZE, SIZE, 3),
                                    num_classes=CLASSES, dtype="float64")


def _f32(value):
  """A Python float as TF rounds it when it makes a float32 constant."""
  return float(np.float32(value))


if torch is not None:
  # pylint: disable-next=g-import-not-at-top
  from l2t_tf.experiments import benchmark_torch_peer as peer
else:
  peer = None


def _t(array):
  return torch.from_numpy(np.ascontiguousarray(array))


def _creation_order(layers, kind):
  """Layers of `kind` by the counter Keras appends to their names."""
  def index(layer):
    tail = layer.name.rsplit("_", 1)
    return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else 0
  return sorted((l for l in layers if isinstance(l, kind)), key=index)


def _randomise_batch_norm(student, rng):
  """Random gamma and beta, so a BatchNorm mix-up cannot go unseen."""
  for bn in _creation_order(student.layers, keras.layers.BatchNormalization):
    bn.gamma.assign(1.0 + 0.2 * rng.normal(size=bn.gamma.shape))
    bn.beta.assign(0.2 * rng.normal(size=bn.beta.shape))
  return student


def _keras_resnet(rng):
  """Tiny float64 ResNet8 (width 2, 8x8 inputs) of the package."""
  return _randomise_batch_norm(cifar_resnet.cifar_resnet(
      input_shape=(SIZE, SIZE, 3), num_classes=CLASSES, depth=8, width=2,
      dtype="float64"), rng)


def _keras_tiny(rng, layer=batch_norm.BatchNormalization):
  """[B, 8, 8, 3] -> logits [B, 3]: conv 3x3 stride 2, BN, ReLU, GAP, Dense.

  TF's "same" padding of the stride-2 convolution is asymmetric.
  """
  dtype = "float64"
  return _randomise_batch_norm(keras.Sequential([
      keras.Input((SIZE, SIZE, 3), dtype=dtype),
      keras.layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False,
                          dtype=dtype),
      layer(dtype=dtype), keras.layers.ReLU(dtype=dtype),
      keras.layers.GlobalAveragePooling2D(dtype=dtype),
      keras.layers.Dense(CLASSES, dtype=dtype)]), rng)


def _torch_tiny():
  """The twin of `_keras_tiny` from the peer's layers (NCHW)."""
  class Tiny(torch.nn.Module):

    def __init__(self):
      super().__init__()
      self.conv = peer.Conv2dSame(3, 4, 3, 2)
      self.bn = peer.batch_norm(4)
      self.fc = torch.nn.Linear(4, CLASSES)

    def forward(self, x):
      return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))
  return Tiny()


def _layer_pairs(student, module):
  """(Keras layer, torch module) pairs: convolutions, BatchNorms, Dense."""
  pairs = []
  for keras_kind, torch_kind in ((keras.layers.Conv2D, torch.nn.Conv2d),
                                 (keras.layers.BatchNormalization,
                                  torch.nn.BatchNorm2d),
                                 (keras.layers.Dense, torch.nn.Linear)):
    ours = _creation_order(student.layers, keras_kind)
    theirs = [m for m in module.modules() if isinstance(m, torch_kind)]
    assert len(ours) == len(theirs), (keras_kind, len(ours), len(theirs))
    pairs += zip(ours, theirs)
  return pairs


def _in_keras_layout(module):
  """A torch layer's weights as Keras holds them (BatchNorm: no variance).

  Conv OIHW -> HWIO, Linear [out, in] -> [in, out]; torch updates the
  running variance with the unbiased batch variance, Keras the biased one.
  """
  if isinstance(module, torch.nn.Conv2d):
    return [module.weight.detach().numpy().transpose(2, 3, 1, 0)]
  if isinstance(module, torch.nn.Linear):
    return [module.weight.detach().numpy().T, module.bias.detach().numpy()]
  return [module.weight.detach().numpy(), module.bias.detach().numpy(),
          module.running_mean.numpy()]


def _torch_twin(student):
  """The peer's model of the Keras `student`, holding its weights."""
  module = (peer.CifarResNet(CLASSES, depth=8, width=2)
            if student.name.startswith("resnet") else _torch_tiny()).double()
  with torch.no_grad():
    for layer, twin in _layer_pairs(student, module):
      weights = [w.numpy() for w in layer.weights]
      if isinstance(twin, torch.nn.Conv2d):
        twin.weight.copy_(_t(weights[0].transpose(3, 2, 0, 1)))
      elif isinstance(twin, torch.nn.Linear):
        twin.weight.copy_(_t(weights[0].T))
        twin.bias.copy_(_t(weights[1]))
      else:
        for tensor, w in zip((twin.weight, twin.bias, twin.running_mean,
                              twin.running_var), weights):
          tensor.copy_(_t(w))
  return module.train()


def _torch_dln(dln):
  """The peer's DLN with `dln`'s kernels.

  TF's LeakyRelu op holds its `alpha` as a 32-bit float attribute, so our
  float64 DLN's slope is float32(0.01) = 0.009999999776...; with torch's
  exact 0.01 the hypergradients differ by ~6e-10 relative.
  """
  module = peer.PairwiseDLN(dln.hidden_units,
                            _f32(dln.negative_slope)).double()
  with torch.no_grad():
    for layer, kernel in zip(module.layers, dln.kernels):
      layer.weight.copy_(_t(kernel.numpy().T))
  return module


def _torch_teacher(teacher):
  """The peer's teacher with `teacher`'s weights.

  A Keras LSTMCell holds kernel [in, 4H], recurrent kernel [H, 4H] and one
  bias, gates in the order i, f, c, o: torch's order (i, f, g, o).
  """
  module = peer.LSTMTeacher(teacher.hidden_units, teacher.output_scale,
                            teacher.preprocess_factor).double()
  with torch.no_grad():
    for cell, keras_cell in zip(module.cells, teacher.cells):
      kernel, recurrent, bias = [w.numpy() for w in keras_cell.weights]
      cell.weight_ih.copy_(_t(kernel.T))
      cell.weight_hh.copy_(_t(recurrent.T))
      cell.bias_ih.copy_(_t(bias))
  return module


def _data(rng, shape):
  """NHWC float64 images and int32 labels for us; NCHW / int64 for torch."""
  x, y = TASK.data.examples(rng, shape)
  axes = tuple(range(len(shape))) + tuple(len(shape) + a for a in (2, 0, 1))
  return (x, y), (_t(x.transpose(axes)), _t(y.astype(np.int64)))


def _relative(ours, theirs):
  """|a - b| / |b| over all tensors, ours [in, out] vs torch's [out, in]."""
  a = np.concatenate([np.ravel(t) for t in ours])
  b = np.concatenate([np.ravel(t) for t in theirs])
  return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _torch_hypergradient(student, dln, batches, validation):
  t_dln = _torch_dln(dln)
  phi = {n: p.detach().requires_grad_() for n, p in t_dln.named_parameters()}
  grads, error, _, _ = peer.hypergradient(
      _torch_twin(student), t_dln, phi, batches, validation, LR)
  return [g.numpy().T for g in grads], float(error)


def _keras_adam_first_lr(lr, beta_1, beta_2):
  """torch Adam's lr whose first step equals Keras' float64 Adam step.

  Keras casts lr and the betas of its bias corrections through float32
  (float64 beta_2 = 0.99900001287..., so 1 - beta_2 is 1.3e-5 off) but
  updates the moments with the exact Python 1 - beta; at step 1 the
  corrections differ from torch's by this factor (the peer already moves
  epsilon where Keras adds it).
  """
  return _f32(lr) * (1 - beta_1) / (1 - _f32(beta_1)) * math.sqrt(
      (1 - _f32(beta_2)) / (1 - beta_2))


class _RecordingOptimizer:
  """Keeps the teacher's last gradients, then applies the real optimizer."""

  def __init__(self, optimizer, variables):
    self.optimizer = optimizer
    self.gradients = [tf.Variable(tf.zeros_like(v), trainable=False)
                      for v in variables]

  def apply(self, gradients, variables):
    for record, g in zip(self.gradients, gradients):
      record.assign(g)
    self.optimizer.apply(gradients, variables)


@unittest.skipUnless(torch is not None,
                     "needs PyTorch: pip install torch==2.13.0")
class TorchPeerTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    keras.utils.set_random_seed(4)
    torch.manual_seed(4)
    self.rng = np.random.default_rng(4)
    self.dln = dln_lib.PairwiseDLN(hidden_units=(5, 5), dtype="float64")

  def test_resnet_matches_keras(self):
    """The peer's ResNet8 is ours: logits, BN statistics and CE gradient."""
    student = _keras_resnet(self.rng)
    twin = _torch_twin(student)
    (x, y), (tx, ty) = _data(self.rng, (BATCH,))
    with tf.GradientTape() as tape:
      logits = student(x, training=True)
      loss = hypergradient.sparse_cross_entropy(y, logits)
    ours = tape.gradient(loss, student.trainable_variables)
    their_logits = twin(tx)
    torch.nn.functional.cross_entropy(their_logits, ty).backward()
    self.assertLess(_relative([logits], [their_logits.detach()]), RTOL)
    grads, theirs, state, their_state = {}, [], [], []
    for var, g in zip(student.trainable_variables, ours):
      grads[var.path] = g.numpy()
    for layer, module in _layer_pairs(student, twin):
      keras_weights = layer.trainable_weights
      torch_grads = [module.weight.grad.numpy()]
      if isinstance(module, torch.nn.Conv2d):
        torch_grads = [torch_grads[0].transpose(2, 3, 1, 0)]
      elif isinstance(module, torch.nn.Linear):
        torch_grads = [torch_grads[0].T, module.bias.grad.numpy()]
      else:
        torch_grads.append(module.bias.grad.numpy())
        state.append(layer.moving_mean.numpy())
        their_state.append(module.running_mean.numpy())
      theirs += torch_grads
      self.assertLen(keras_weights, len(torch_grads))
      ours_here = [grads[w.path] for w in keras_weights]
      self.assertLess(_relative(ours_here, torch_grads), RTOL, layer.name)
    self.assertLen(theirs, len(ours))
    self.assertLess(_relative(state, their_state), RTOL)

  def test_hypergradient_matches_torch(self):
    student = _keras_tiny(self.rng)
    (xs, ys), batches = _data(self.rng, (N, BATCH))
    (xv, yv), validation = _data(self.rng, (VAL,))
    theirs, their_error = _torch_hypergradient(student, self.dln, batches,
                                               validation)
    for mode in hypergradient.MODES:
      ours, our_error = hypergradient.unrolled_hypergradient(
          student, self.dln, list(zip(xs, ys)), (xv, yv), LR, mode=mode,
          validation_training=True)
      self.assertAllClose(our_error, their_error, rtol=RTOL, atol=0)
      self.assertLess(_relative(ours, theirs), RTOL, mode)
    self.assertGreater(np.linalg.norm(np.ravel(theirs[0])), 1e-6)

  def test_keras_batch_norm_is_caught(self):
    """Keras' BatchNorm drops a second-order term: the check must see it."""
    student = _keras_tiny(self.rng, keras.layers.BatchNormalization)
    (xs, ys), batches = _data(self.rng, (N, BATCH))
    (xv, yv), validation = _data(self.rng, (VAL,))
    theirs, their_error = _torch_hypergradient(student, self.dln, batches,
                                               validation)
    ours, our_error = hypergradient.unrolled_hypergradient(
        student, self.dln, list(zip(xs, ys)), (xv, yv), LR,
        validation_training=True)
    # The same values, not the same second derivatives.
    self.assertAllClose(our_error, their_error, rtol=RTOL, atol=0)
    self.assertGreater(_relative(ours, theirs), 1e3 * RTOL)

  def test_teaching_round_matches_torch(self):
    """Stages I-III with the LSTM teacher: metrics, phi_1, theta_2N, teacher."""
    student = _keras_tiny(self.rng)
    parts = rounds_lib.RoundParts(strategy=tf.distribute.get_strategy(),
                                  task=TASK, student=student,
                                  learning_rate=LR, dln=self.dln)
    rounds = rounds_lib.L2TRound(parts, updater=dln_updaters.TeacherUpdater(
        hidden_units=(6, 6)))  # Built by the round, as the DLN: float64.
    updater = rounds.updater
    teacher_vars = updater.teacher.trainable_variables
    updater.optimizer = _RecordingOptimizer(updater.optimizer, teacher_vars)
    t_student, t_dln = _torch_twin(student), _torch_dln(self.dln)
    t_teacher = _torch_teacher(updater.teacher)
    teacher_before = [[w.numpy() for w in cell.weights]
                      for cell in updater.teacher.cells]
    self.assertEqual([v.path for v in teacher_vars], [
        w.path for cell in updater.teacher.cells for w in cell.weights])
    (train, t_train), (val, t_val) = (_data(self.rng, (2, N, BATCH)),
                                      _data(self.rng, (VAL,)))
    ours = rounds(train, val).metrics()
    peer_round = peer.PeerRound(t_student, t_dln, t_teacher, LR)
    for group in peer_round.optimizer.param_groups:
      group["lr"] = _keras_adam_first_lr(group["lr"], *group["betas"])
    theirs = peer_round(t_train, t_val)
    for key in ("e1", "e2", "train_loss", "hypergradient_norm",
                "teacher_output_norm", "teacher_gradient_norm"):
      self.assertAllClose(ours[key], theirs[key], rtol=RTOL, atol=0, msg=key)
    self.assertLess(_relative(
        self.dln.kernels, [l.weight.detach().numpy().T for l in t_dln.layers]),
                    RTOL)
    ours_after, theirs_after = [], []  # theta_2N and the moving means.
    for layer, twin in _layer_pairs(student, t_student):
      ours_after += [w.numpy() for w in layer.weights][:3]
      theirs_after += _in_keras_layout(twin)
    self.assertLess(_relative(ours_after, theirs_after), RTOL)
    torch_grads, torch_steps = [], []
    for cell, before in zip(t_teacher.cells, teacher_before):
      after = [cell.weight_ih.detach().numpy().T,
               cell.weight_hh.detach().numpy().T, cell.bias_ih.detach().numpy()]
      torch_steps += [a - b for a, b in zip(after, before)]
      torch_grads += [cell.weight_ih.grad.numpy().T,
                      cell.weight_hh.grad.numpy().T, cell.bias_ih.grad.numpy()]
    keras_steps = [v.numpy() - b for v, b in zip(
        teacher_vars, sum(teacher_before, []))]
    keras_grads = [g.numpy() for g in updater.optimizer.gradients]
    self.assertLess(_relative(keras_grads, torch_grads), RTOL)
    self.assertLess(_relative(keras_steps, torch_steps), RTOL)  # Adam's.
    for cell in t_teacher.cells:  # One learned bias, as Keras'.
      self.assertFalse(np.any(cell.bias_hh.detach().numpy()))

if __name__ == "__main__":
  tf.test.main()

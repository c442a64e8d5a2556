r"""A PyTorch peer of one L2T-DLN teaching round; prints one JSON line.

  python tools/benchmark_torch_peer.py --depth=8 --width=16 --unroll=5
  python tools/benchmark_torch_peer.py --unroll=25 --threads=1

An independent, idiomatic `torch.func` implementation of the round that
`tools/benchmark_hypergrad.py` times (`rounds.L2TRound`, stage3="paper",
mode "unrolled"), for speed comparison (`tools/speed_vs_peer.py`) and as the
float64 reference of `tests/test_hypergradient_torch_peer.py`:

Stage I    N SGD steps (lr 0.1) of the CIFAR ResNet student on the DLN loss
           from theta_0, each one `functional_call` + `torch.autograd.grad(
           create_graph=True)`, so the graph of all N steps is kept; e_1 =
           cross-entropy on the validation batch (BatchNorm in training
           mode: the validation batch's own statistics); g = de_1/dphi_0.
Stage II   phi_1 = phi_0 + T(g), T the coordinate-wise stacked-LSTM teacher
           (g detached, state carried with its gradient stopped).
Stage III  N more steps from theta_N with phi_1 on new batches, e_2,
           de_2/dphi_1; the teacher's gradient is the VJP of T(g) with
           de_2/dphi_1 (`step.backward`), then one Adam step (lr 1e-3).

No derivative is written by hand. The models are the package's: ResNet
(3x3 convolutions without bias, "same" padding as TF's, i.e. one extra
row/column at the bottom/right for stride 2; BatchNorm eps 1e-3, Keras
momentum 0.99 = torch momentum 0.01; a Dense head with bias), the pairwise
DLN ("sigmoid4" rows, LeakyReLU 0.01, no biases, kaiming-normal fan_out) and
the LSTM teacher (cells 64, 64, 64, 1; output x 1e-3; PyTorch's LSTMCell,
whose gate order i, f, g, o is Keras'). Adam is torch's with its epsilon
rescaled every step so that it equals Keras' (which adds 1e-7 to sqrt(v),
not to the bias-corrected sqrt(v_hat)). Known differences that do not change
a round's outputs: torch updates the BatchNorm running variance with the
unbiased batch variance (Keras: biased), and the initial weights are drawn
differently (the test copies Keras' weights).

Data: random CIFAR-shaped images, NCHW (torch's layout; ours is NHWC),
made before the clock starts. The round is timed after one warm-up round
(median of --rounds), and so is one plain SGD + cross-entropy step of the
same model (`torch.optim.SGD`, median over max(2N, 10) steps after a
warm-up step). --threads sets `torch.set_num_threads`; default
os.cpu_count() (TF's intra-op default; torch's own default is the number of
physical cores, equal on a box without hyper-threading). OMP_WAIT_POLICY
is left at torch's own default (libgomp's ACTIVE: workers spin at OpenMP
barriers) unless it is set (issue 25: a speed claim is made against a peer
at its own defaults, on a quiet machine). PASSIVE is fair only on a loaded
machine, where spinning workers whose sibling has lost its core to another
job made a plain step 4-7x slower (0.29 s against 0.047 s with one thread
and 0.07 s passive, ResNet8 w16); a figure measured so must say so.

Output keys: depth, width, unroll, mode ("unrolled", the only one),
batch_size, val_batch_size, round_s (median), plain_step_s (median),
overhead = round_s / (2N * plain_step_s), peak_rss_mb (peak resident memory
of this process up to the end of the timed rounds), warmup_s (first round
minus round_s), framework ("torch"), torch_version, threads, omp_wait_policy
(its value, or "default" if unset), load_average (the 1, 5, 15-minute load
averages when the run started).
"""
import json
import math
import os
import resource
import statistics
import sys
import time

LOAD_AT_START = [round(v, 2) for v in os.getloadavg()]  # Before torch loads.

try:
  import torch  # pylint: disable=g-import-not-at-top
except ImportError:
  if __name__ != "__main__":
    raise  # Imported (tests): let the caller skip.
  sys.stderr.write("error: PyTorch is not installed; the peer needs it: "
                   "pip install torch==2.13.0\n")
  sys.exit(2)
from torch import nn  # pylint: disable=g-import-not-at-top
from torch.nn import functional as F

functional_call = torch.func.functional_call

KERAS_BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3
ADAM_EPSILON = 1e-7  # Keras' default, added to sqrt(v).


def same_padding(size, kernel, stride):
  """TF's "SAME" padding of one spatial axis: (before, after)."""
  if size % stride == 0:
    total = max(kernel - stride, 0)
  else:
    total = max(kernel - size % stride, 0)
  return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
  """Bias-free convolution with TF/Keras "same" padding (NCHW)."""

  def __init__(self, in_channels, out_channels, kernel_size, stride):
    super().__init__(in_channels, out_channels, kernel_size, stride,
                     padding=0, bias=False)
    nn.init.kaiming_normal_(self.weight, mode="fan_in", nonlinearity="relu")

  def forward(self, x):
    (top, bottom), (left, right) = [
        same_padding(n, k, s) for n, k, s in zip(x.shape[2:],
                                                 self.kernel_size,
                                                 self.stride)]
    if top == bottom and left == right:  # Symmetric: the conv pads itself.
      return F.conv2d(x, self.weight, None, self.stride, (top, left))
    return F.conv2d(F.pad(x, (left, right, top, bottom)), self.weight, None,
                    self.stride)


def batch_norm(channels):
  return nn.BatchNorm2d(channels, eps=BN_EPSILON,
                        momentum=1.0 - KERAS_BN_MOMENTUM)


class BasicBlock(nn.Module):
  """conv-BN-ReLU-conv-BN + shortcut (1x1 conv-BN when the shape changes).

  Submodules are registered in the order Keras creates its layers
  (`cifar_resnet._basic_block`), so weights can be copied in order.
  """

  def __init__(self, in_channels, filters, stride):
    super().__init__()
    self.conv1 = Conv2dSame(in_channels, filters, 3, stride)
    self.bn1 = batch_norm(filters)
    self.conv2 = Conv2dSame(filters, filters, 3, 1)
    self.bn2 = batch_norm(filters)
    self.shortcut = None
    if stride != 1 or in_channels != filters:
      self.shortcut = nn.Sequential(
          Conv2dSame(in_channels, filters, 1, stride), batch_norm(filters))

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class CifarResNet(nn.Module):
  """ResNet-`depth` (6n + 2), stages w, 2w, 4w: [B, 3, H, W] -> [B, C]."""

  def __init__(self, num_classes=10, depth=8, width=16, in_channels=3):
    super().__init__()
    if (depth - 2) % 6:
      raise ValueError(f"depth must be 6n + 2, got {depth}.")
    self.conv = Conv2dSame(in_channels, width, 3, 1)
    self.bn = batch_norm(width)
    blocks, channels = [], width
    for stage in range(3):
      for block in range((depth - 2) // 6):
        filters = width * 2**stage
        blocks.append(BasicBlock(channels, filters,
                                 2 if stage > 0 and block == 0 else 1))
        channels = filters
    self.blocks = nn.Sequential(*blocks)
    self.fc = nn.Linear(channels, num_classes)
    nn.init.xavier_uniform_(self.fc.weight)  # Keras' Dense defaults.
    nn.init.zeros_(self.fc.bias)

  def forward(self, x):
    x = self.blocks(F.relu(self.bn(self.conv(x))))
    return self.fc(x.mean(dim=(2, 3)))


class PairwiseDLN(nn.Module):
  """The "1-vs-1" DLN, input mode "sigmoid4": (logits [M, C], y [M]) -> scalar.

  Row (i, j) = [sigmoid(z_iy), sigmoid(z_ij), 1, 0] for j != y_i, zero for
  j == y_i; the loss is the mean of the bias-free MLP's outputs over all
  M * C rows. Linear weights are [out, in] (Keras kernels transposed).
  """

  def __init__(self, hidden_units=(40, 40, 40, 40), negative_slope=0.01):
    super().__init__()
    widths = (4,) + tuple(hidden_units) + (1,)
    self.negative_slope = negative_slope
    self.layers = nn.ModuleList(
        nn.Linear(n_in, n_out, bias=False)
        for n_in, n_out in zip(widths[:-1], widths[1:]))
    for layer in self.layers:
      nn.init.kaiming_normal_(layer.weight, a=negative_slope, mode="fan_out",
                              nonlinearity="leaky_relu")

  def forward(self, logits, labels):
    probs = torch.sigmoid(logits)
    onehot = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
    true_prob = (probs * onehot).sum(-1, keepdim=True).expand_as(probs)
    rows = torch.stack([true_prob, probs, torch.ones_like(probs),
                        torch.zeros_like(probs)], dim=-1)
    x = rows * (1.0 - onehot)[..., None]  # [M, C, 4]
    for i, layer in enumerate(self.layers):
      x = layer(x)
      if i < len(self.layers) - 1:
        x = F.leaky_relu(x, self.negative_slope)
    return x[..., 0].mean()


def preprocess_gradient(gradient, k=10.0):
  """Andrychowicz et al. (2016): g [P] -> [P, 2] features.

  (log|g| / k, sign g) where |g| >= e^-k, else (-1, e^k g).
  """
  magnitude = gradient.abs()
  keep = magnitude >= math.exp(-k)
  safe = torch.where(keep, magnitude, torch.ones_like(magnitude))
  first = torch.where(keep, safe.log() / k, -torch.ones_like(gradient))
  second = torch.where(keep, gradient.sign(), math.exp(k) * gradient)
  return torch.stack([first, second], dim=-1)


class LSTMTeacher(nn.Module):
  """Coordinate-wise stacked LSTM: (g [P], state) -> (step [P], state).

  Cells 2 -> hidden_units... -> 1; the step is the last cell's h times
  `output_scale`. State: one (h, c) pair per cell, each [P, units].
  One bias per cell, as a Keras LSTMCell: `bias_ih` starts at torch's
  b_ih + b_hh (the sum of two uniform draws, our "release" initialisation)
  and `bias_hh` is a frozen zero (two learned biases would move twice as
  fast under Adam).
  """

  def __init__(self, hidden_units=(64, 64, 64), output_scale=1e-3,
               preprocess_factor=10.0):
    super().__init__()
    units = tuple(hidden_units) + (1,)
    self.cells = nn.ModuleList(nn.LSTMCell(n_in, u) for n_in, u in
                               zip((2,) + units[:-1], units))
    with torch.no_grad():
      for cell in self.cells:
        cell.bias_ih.add_(cell.bias_hh)
        cell.bias_hh.zero_()
        cell.bias_hh.requires_grad_(False)
    self.output_scale, self.preprocess_factor = output_scale, preprocess_factor

  def initial_state(self, num_coordinates, dtype=torch.float32):
    return [(torch.zeros(num_coordinates, c.hidden_size, dtype=dtype),
             torch.zeros(num_coordinates, c.hidden_size, dtype=dtype))
            for c in self.cells]

  def forward(self, gradient, state):
    x, new_state = preprocess_gradient(gradient, self.preprocess_factor), []
    for cell, hc in zip(self.cells, state):
      h, c = cell(x, hc)
      new_state.append((h, c))
      x = h
    return self.output_scale * x[:, 0], new_state


def sgd_unroll(student, theta, buffers, loss_fn, xs, ys, learning_rate):
  """N SGD steps keeping the graph (create_graph=True).

  Args:
    student: the nn.Module, run with `functional_call`.
    theta: {name: tensor} parameters theta_0 (requiring grad).
    buffers: {name: tensor} BatchNorm buffers, updated in place (no grad).
    loss_fn: (logits, labels) -> scalar, the DLN loss.
    xs, ys: [N, B, ...] inputs and [N, B] labels.
    learning_rate: eta.
  Returns:
    (theta_N as a dict of graph-connected tensors, mean training loss).
  """
  total = 0.0
  for x, y in zip(xs, ys):
    loss = loss_fn(functional_call(student, (theta, buffers), (x,)), y)
    grads = torch.autograd.grad(loss, tuple(theta.values()),
                                create_graph=True)
    theta = {k: w - learning_rate * g for (k, w), g in zip(theta.items(),
                                                           grads)}
    total += loss.detach()
  return theta, total / len(xs)


def hypergradient(student, dln, phi, batches, validation_batch,
                  learning_rate):
  """de_val/dphi after N SGD steps of `student` from its current weights.

  Args:
    student: nn.Module in training mode; its buffers are carried through
      the steps in place (not through the validation pass).
    dln: the DLN nn.Module, run with `functional_call` on `phi`.
    phi: {name: leaf tensor requiring grad}, the DLN weights.
    batches: (xs [N, B, ...], ys [N, B]).
    validation_batch: (x [V, ...], y [V]).
    learning_rate: eta.
  Returns:
    (grads: tuple like phi.values(), e_val, theta_N: {name: detached},
    mean training loss).
  """
  theta = {k: p.detach().requires_grad_() for k, p in
           student.named_parameters()}
  buffers = dict(student.named_buffers())
  train_loss = lambda logits, y: functional_call(dln, phi, (logits, y))
  theta, loss = sgd_unroll(student, theta, buffers, train_loss, *batches,
                           learning_rate)
  x, y = validation_batch
  val_buffers = {k: b.clone() for k, b in buffers.items()}
  error = F.cross_entropy(functional_call(student, (theta, val_buffers),
                                          (x,)), y)
  grads = torch.autograd.grad(error, tuple(phi.values()))
  return grads, error.detach(), {k: w.detach() for k, w in theta.items()}, loss


def _flat(tensors):
  return torch.cat([t.reshape(-1) for t in tensors])


def _assign(module, values):
  """Copies {name: tensor} into the module's parameters."""
  with torch.no_grad():
    for name, p in module.named_parameters():
      p.copy_(values[name])


class PeerRound:
  """Stages I-III (stage3 "paper", mode "unrolled") on torch modules."""

  def __init__(self, student, dln, teacher, learning_rate=0.1,
               teacher_learning_rate=1e-3):
    self.student, self.dln, self.teacher = student, dln, teacher
    self.learning_rate = learning_rate
    dtype = next(dln.parameters()).dtype
    self.state = teacher.initial_state(
        sum(p.numel() for p in dln.parameters()), dtype)
    self.optimizer = torch.optim.Adam(
        [p for p in teacher.parameters() if p.requires_grad],
        lr=teacher_learning_rate)
    self.teacher_steps = 0
    student.train()

  def _stage(self, phi, batches, validation_batch):
    """One unroll from the student's weights; writes theta_N back."""
    grads, error, theta, loss = hypergradient(
        self.student, self.dln, phi, batches, validation_batch,
        self.learning_rate)
    _assign(self.student, theta)
    return grads, error, loss

  def _teacher_adam_step(self):
    """torch Adam with Keras' epsilon: eps / sqrt(1 - beta_2^t)."""
    self.teacher_steps += 1
    for group in self.optimizer.param_groups:
      group["eps"] = ADAM_EPSILON / math.sqrt(
          1.0 - group["betas"][1]**self.teacher_steps)
    self.optimizer.step()

  def __call__(self, train_batches, validation_batch):
    """train_batches: (xs [2, N, B, ...], ys [2, N, B]); returns metrics."""
    xs, ys = train_batches
    phi0 = {n: p.detach().requires_grad_() for n, p in
            self.dln.named_parameters()}
    g1, e1, loss = self._stage(phi0, (xs[0], ys[0]), validation_batch)
    step, state = self.teacher(_flat(g1), self.state)  # Graph kept for III.
    self.state = [tuple(t.detach() for t in hc) for hc in state]
    deltas = torch.split(step.detach(), [p.numel() for p in phi0.values()])
    phi1 = {n: (p + d.view_as(p)).detach().requires_grad_()
            for (n, p), d in zip(phi0.items(), deltas)}
    _assign(self.dln, phi1)
    g2, e2, _ = self._stage(phi1, (xs[1], ys[1]), validation_batch)
    self.optimizer.zero_grad()
    step.backward(_flat(g2))  # de_2/dvarphi = (de_2/dphi_1)^T dT(g)/dvarphi.
    grads = [p.grad for p in self.teacher.parameters() if p.requires_grad]
    self._teacher_adam_step()
    return {"e1": float(e1), "e2": float(e2), "train_loss": float(loss),
            "hypergradient_norm": float(_flat(g1).norm()),
            "teacher_output_norm": float(step.detach().norm()),
            "teacher_gradient_norm": float(_flat(grads).norm())}


def _random_batches(generator, classes, *shape):
  """Random CIFAR-shaped NCHW float32 images and int64 labels."""
  x = torch.randn(*shape, 3, 32, 32, generator=generator)
  return x, torch.randint(0, classes, shape, generator=generator)


def plain_step_seconds(student, generator, classes, batch_size, steps):
  """Median time of one SGD (lr 0.1) + CE step after a warm-up step."""
  optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
  data = [_random_batches(generator, classes, batch_size) for _ in range(10)]

  def step(x, y):
    optimizer.zero_grad()
    loss = F.cross_entropy(student(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()

  step(*data[0])
  times = []
  for i in range(steps):
    start = time.perf_counter()
    step(*data[i % len(data)])
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _define_flags():
  """The peer's flags (only run as a script: tests import it without them).

  The shared ones come from the sibling module `benchmark_flags`, imported
  without importing the l2t_tf package when the peer runs by its path (as
  `tools/benchmark_torch_peer.py` and `speed_vs_peer.py` run it): l2t_tf's
  __init__ would load TensorFlow into the peer's process.
  """
  # pylint: disable=g-import-not-at-top
  from absl import flags
  if __package__:  # python -m l2t_tf.experiments.benchmark_torch_peer
    from l2t_tf.experiments import benchmark_flags
  else:  # Run by path: a script's directory is on sys.path; runpy's not.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import benchmark_flags
  # pylint: enable=g-import-not-at-top
  benchmark_flags.define_round_flags()
  flags.DEFINE_integer("threads", None, "torch.set_num_threads; default "
                       "os.cpu_count() (TF's intra-op default).")
  flags.DEFINE_integer("seed", 0, "Seed of torch's weights and data.")
  return flags.FLAGS


def main(flags_):
  """Times the rounds and the plain step; prints the JSON line."""
  import copy  # pylint: disable=g-import-not-at-top
  threads = flags_.threads or os.cpu_count()
  torch.set_num_threads(threads)
  torch.manual_seed(flags_.seed)
  generator = torch.Generator().manual_seed(flags_.seed)
  student = CifarResNet(flags_.classes, flags_.depth, flags_.width)
  plain_student = copy.deepcopy(student)
  rounds = PeerRound(student, PairwiseDLN(), LSTMTeacher())
  n, times = flags_.unroll, []
  for _ in range(flags_.rounds + 1):
    train = _random_batches(generator, flags_.classes, 2, n,
                            flags_.batch_size)
    val = _random_batches(generator, flags_.classes, flags_.val_batch_size)
    start = time.perf_counter()
    rounds(train, val)
    times.append(time.perf_counter() - start)
    del train, val
  round_s = statistics.median(times[1:])
  peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  plain = plain_step_seconds(plain_student, generator, flags_.classes,
                             flags_.batch_size, max(2 * n, 10))
  # Strict JSON (timings and settings: a NaN is a bug, refused). Not
  # l2t_tf.strict_json: importing l2t_tf would load TensorFlow in here.
  print(json.dumps({
      "depth": flags_.depth, "width": flags_.width, "unroll": n,
      "mode": "unrolled", "batch_size": flags_.batch_size,
      "val_batch_size": flags_.val_batch_size,
      "round_s": round(round_s, 4), "plain_step_s": round(plain, 5),
      "overhead": round(round_s / (2 * n * plain), 3),
      "peak_rss_mb": round(peak_rss_mb, 1),
      "warmup_s": round(times[0] - round_s, 2),
      "framework": "torch", "torch_version": torch.__version__,
      "threads": threads,
      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
      "load_average": LOAD_AT_START,
  }, allow_nan=False))


if __name__ == "__main__":
  from absl import app  # pylint: disable=g-import-not-at-top
  FLAGS = _define_flags()
  app.run(lambda argv: main(FLAGS))

"""Issue 13: big unrolled graphs survive grappler's memory optimizer.

When the static peak-memory estimate of a graph exceeds 80 % of the CPU
device's 256 MiB memory limit, the memory optimizer's scheduling pass turns
every AddN of more than two inputs live at the peak into a TemporaryVariable
accumulation. In the gradient of a while loop that variable leaks from the
loop's last (dead) iteration, so the *second* call of the function fails with
`AlreadyExistsError ... AddN_<k>/tmp_var`; the wide ResNet8 unroll hit it. A
tiny MLP student on a 2^18-sample batch crosses the same threshold in a few
seconds (1.4 GB of memory); half that batch does not, so the size is chosen
just large enough. `hypergradient.function` must compile such loops without
that pass and leave the numbers alone.
"""
from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import dln as dln_lib
from l2t_tf import hypergradient

BIG_BATCH = 2**18  # 2^17 stays under the threshold (TF 2.21, CPU).


def _mlp():
  return keras.Sequential([keras.Input((6,)),
                           keras.layers.Dense(8, activation="tanh"),
                           keras.layers.Dense(4)])


def _data(batch, n=2, seed=0):
  rng = np.random.default_rng(seed)
  batches = [(rng.normal(size=(batch, 6)).astype(np.float32),
              rng.integers(0, 4, batch).astype(np.int32)) for _ in range(n)]
  val = (rng.normal(size=(7, 6)).astype(np.float32),
         rng.integers(0, 4, 7).astype(np.int32))
  return batches, val


class MemoryOptimizerTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    keras.utils.set_random_seed(1)

  def test_large_addn_unroll_runs_twice(self):
    """Two calls of a big unrolled hypergradient: no tmp_var collision.

    Fails without the fix (plain `tf.function` in `hypergradient._compiled`)
    with AlreadyExistsError on the second call. Both calls must also return
    the same finite hypergradient.
    """
    student = _mlp()
    dln = dln_lib.PairwiseDLN(hidden_units=(6, 6))
    batches, val = _data(BIG_BATCH)
    first, error = hypergradient.unrolled_hypergradient(
        student, dln, batches, val, 0.5)
    second, error_again = hypergradient.unrolled_hypergradient(
        student, dln, batches, val, 0.5)
    self.assertTrue(np.isfinite(float(error)))
    self.assertGreater(float(tf.linalg.global_norm(first)), 0.)
    self.assertEqual(float(error), float(error_again))
    for a, b in zip(first, second):
      self.assertAllEqual(a, b)

  @parameterized.parameters("unrolled", "reverse")
  def test_same_numbers_as_tf_function(self, mode):
    """Below the threshold the optimiser changes nothing: bit-equal results.

    Also checks that the wrapper forwards `tf.function`'s attributes (the
    teaching round counts traces with them).
    """
    student = _mlp()
    dln = dln_lib.PairwiseDLN(hidden_units=(6, 6))
    batches, val = _data(5)
    xs = tf.stack([b[0] for b in batches])
    ys = tf.stack([b[1] for b in batches])

    def unroll(xs, ys):
      return hypergradient.unroll(
          hypergradient.stateless_apply(student),
          [v.value for v in student.trainable_variables], [], dln,
          hypergradient.sparse_cross_entropy, (xs, ys), val, 0.5,
          dln.trainable_variables, mode).gradients

    wrapped = hypergradient.function(unroll)
    want = tf.function(unroll)(xs, ys)
    got = wrapped(xs, ys)
    for a, b in zip(want, got):
      self.assertAllEqual(a, b)
    self.assertEqual(wrapped.experimental_get_tracing_count(), 1)
    self.assertIsNotNone(wrapped.get_concrete_function(xs, ys))
    # Called inside another function it is inlined (the caller's config).
    nested = tf.function(lambda xs, ys: wrapped(xs, ys))(xs, ys)
    for a, b in zip(want, nested):
      self.assertAllClose(a, b)


if __name__ == "__main__":
  tf.test.main()

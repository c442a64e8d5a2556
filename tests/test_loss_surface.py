"""Figure 3 support: DLN snapshots and the loss surface."""
import numpy as np
import tensorflow as tf

from l2t_tf import dln as dln_lib
from l2t_tf import loss_surface


class LossSurfaceTest(tf.test.TestCase):

  def test_linear_dln_surface_closed_form(self):
    dln = dln_lib.PairwiseDLN(hidden_units=(), dtype="float64")
    dln.kernels[0].assign([[2.0], [-3.0], [0.5], [7.0]])
    p_true, p_wrong, loss = loss_surface.surface(dln, points=5)
    self.assertEqual(loss.shape, (5, 5))
    self.assertAllClose(loss, 2.0 * p_true - 3.0 * p_wrong + 0.5)

  def test_surface_matches_the_dln_on_a_one_row_batch(self):
    """A sample with 2 classes has one wrong-class row; undo the sigmoid."""
    dln = dln_lib.PairwiseDLN(dtype="float64")
    p_true, p_wrong, loss = loss_surface.surface(dln, points=5)
    i, j = 3, 1
    logits = np.log([[p_true[i, j] / (1 - p_true[i, j]),
                      p_wrong[i, j] / (1 - p_wrong[i, j])]])
    # Mean over B*C = 2 rows, one of which (the true class) is zero.
    self.assertAllClose(2 * dln(np.array([0]), logits), loss[i, j])

  def test_snapshot_round_trip(self):
    dln = dln_lib.PairwiseDLN(hidden_units=(5, 5), input_mode="softmax2")
    path = loss_surface.save_snapshot(dln, self.get_temp_dir(), 3)
    self.assertEqual(loss_surface.snapshots(self.get_temp_dir()), {3: path})
    restored = loss_surface.load_snapshot(path)
    self.assertEqual(restored.input_mode, "softmax2")
    for a, b in zip(dln.variables, restored.variables):
      self.assertAllEqual(a, b)
    self.assertNotEmpty(loss_surface.contour_png(restored, "t")[:8])


if __name__ == "__main__":
  tf.test.main()

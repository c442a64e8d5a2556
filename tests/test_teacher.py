"""The LSTM teacher (paper Eq. 3, Table 6): preprocessing, shapes, scale."""
import math

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from l2t_tf import teacher as teacher_lib


class PreprocessTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("float32", "float64")
  def test_andrychowicz_preprocessing(self, dtype):
    g = np.array([1.0, -0.01, 0.0, 1e-4, -math.exp(-10) * 0.5], dtype)
    out = teacher_lib.preprocess_gradient(g, k=10.0).numpy()
    expected = [[0.0, 1.0], [math.log(0.01) / 10, -1.0], [-1.0, 0.0],
                [math.log(1e-4) / 10, 1.0], [-1.0, -0.5]]
    self.assertAllClose(out, expected, rtol=1e-5)


class LSTMTeacherTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("float32", "float64")
  def test_shapes_and_scale(self, dtype):
    teacher = teacher_lib.LSTMTeacher(dtype=dtype)
    self.assertEqual(teacher.state_sizes, [64, 64, 64, 1])
    state = teacher.initial_state(7)
    g = np.random.default_rng(0).normal(size=7).astype(dtype)
    step, new_state = teacher(g, state)
    self.assertEqual(step.shape, (7,))
    self.assertEqual(step.dtype, tf.as_dtype(dtype))
    # The last LSTM cell outputs h in (-1, 1): |step| < output_scale.
    self.assertLess(float(tf.reduce_max(tf.abs(step))), 1e-3)
    self.assertEqual([tuple(h.shape) for h, _ in new_state],
                     [(7, 64), (7, 64), (7, 64), (7, 1)])


if __name__ == "__main__":
  tf.test.main()

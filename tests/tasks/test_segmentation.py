"""Segmentation (issue 6): VOC+SBD builder, PSPNet, mIoU, pspnet_voc.gin.

The data tests write a tiny fake VOC 2012 + SBD archive pair in the official
layout (tests/fake_voc_sbd.py) and build it with the real tfds builder.
"""
import json
import os
import tarfile
import tempfile
from unittest import mock

import gin
import keras
import numpy as np
import tensorflow as tf

from l2t_tf import config
from l2t_tf import dln as dln_lib
from l2t_tf import errors
from l2t_tf import train_eval as train_eval_lib
from l2t_tf.data import voc_sbd
from l2t_tf.students import pspnet
from l2t_tf.tasks import segmentation
from l2t_tf.tasks import segmentation_metrics as metrics_lib
import gradcheck
import trainer_testlib

import fake_voc_sbd  # pylint: disable=g-bad-import-order


class MetricsTest(tf.test.TestCase):

  def test_confusion_and_miou_by_hand(self):
    labels = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
    predictions = np.array([[0, 1, 1, 1], [2, 0, 2, 0]])
    confusion = metrics_lib.confusion_matrix(labels, predictions, 3)
    # Rows = truth, columns = prediction; the 255 pixel is skipped.
    self.assertAllEqual(confusion, [[1, 1, 0], [1, 2, 0], [1, 0, 1]])
    # IoU: c0 1/(3+2-1)=1/4, c1 2/(3+3-2)=1/2, c2 1/(1+2-1)=1/2.
    result = metrics_lib.segmentation_metrics(confusion, ("a", "b", "c"))
    self.assertEqual(next(iter(result)), "test_miou")
    self.assertAllClose(result["test_miou"], (0.25 + 0.5 + 0.5) / 3)
    self.assertAllClose(result["test_pixel_accuracy"], 4 / 7)
    self.assertAllClose([result[f"test_iou/{c}"] for c in "abc"],
                        [0.25, 0.5, 0.5])

  def test_absent_class_is_left_out_of_the_mean(self):
    confusion = np.array([[2, 0, 0], [1, 1, 0], [0, 0, 0]])
    result = metrics_lib.segmentation_metrics(confusion, ("a", "b", "c"))
    self.assertNotIn("test_iou/c", result)
    self.assertAllClose(result["test_miou"], (2 / 3 + 1 / 2) / 2)

  def test_sliding_window_covers_large_and_small_images(self):
    self.assertEqual(metrics_lib.window_starts(10, 4, 3), [0, 3, 6])
    self.assertEqual(metrics_lib.window_starts(3, 4, 3), [0])
    # A per-pixel "model": the class is the first channel's sign, so every
    # window agrees and the stitched map must equal the direct answer.
    inputs = keras.Input((8, 8, 3))
    logits = keras.layers.Lambda(
        lambda x: tf.concat([x[..., :1], -x[..., :1]], -1))(inputs)
    model = keras.Model(inputs, [logits, logits])
    for shape in ((5, 6, 3), (13, 19, 3)):
      image = np.random.default_rng(0).normal(size=shape).astype(np.float32)
      predicted = metrics_lib.SlidingWindow(model, 8)(image)
      self.assertAllEqual(predicted, (image[..., 0] <= 0).astype(int))


class DLNPixelStrideTest(tf.test.TestCase):

  def test_strided_dln_sees_the_grid_pixels_only(self):
    task = segmentation.SegmentationTask(dln_pixel_stride=2, crop_size=8)
    dln = task.build_dln()
    rng = np.random.default_rng(0)
    y = rng.integers(0, 21, size=(2, 8, 8))
    main, aux = rng.normal(size=(2, 2, 8, 8, 21)).astype(np.float32)
    expected = (dln(y[:, ::2, ::2], main[:, ::2, ::2]) +
                0.4 * dln(y[:, ::2, ::2], aux[:, ::2, ::2]))
    self.assertAllClose(task.student_loss(dln, y, [main, aux]), expected)
    with self.assertRaisesRegex(ValueError, "dln_pixel_stride"):
      segmentation.SegmentationTask(dln_pixel_stride=0)


class PSPNetTest(tf.test.TestCase):

  def test_outputs_and_interpolation(self):
    model = pspnet.pspnet(input_shape=(40, 40, 3), depth=14, width=8)
    main, aux = model(tf.zeros([2, 40, 40, 3]), training=False)
    self.assertEqual(main.shape, (2, 40, 40, 21))
    self.assertEqual(aux.shape, (2, 40, 40, 21))
    # Output stride 8: conv5 is 5x5 for a 40x40 input.
    self.assertEqual(model.get_layer("conv5_block1_out").output.shape[1:3],
                     (5, 5))
    self.assertFalse([l.name for l in model.layers
                      if getattr(l, "use_bias", False)])
    x = tf.random.normal([1, 5, 7, 2])
    self.assertAllClose(
        pspnet.SeparableResize((9, 11))(x),
        tf.compat.v1.image.resize_bilinear(x, [9, 11], align_corners=True),
        atol=1e-5)
    z = np.arange(54, dtype=np.float32).reshape(1, 6, 9, 1)
    blocks = z.reshape(1, 2, 3, 3, 3, 1).mean(axis=(2, 4))  # 3x3 blocks.
    self.assertAllClose(
        pspnet.SeparableResize((2, 3), "adaptive_pool")(tf.constant(z)),
        blocks)
    self.assertAllClose(pspnet.adaptive_pool_matrix(5, 3).sum(1), [1, 1, 1])

  def test_imagenet_style_weights_load_with_biases_folded(self):
    reference = keras.applications.ResNet50(
        include_top=False, weights=None, input_shape=(None, None, 3))
    rng = np.random.default_rng(0)
    for layer in reference.layers:  # Non-trivial biases and statistics.
      if layer.name.endswith(("_conv", "_bn")):
        weights = layer.get_weights()  # [kernel, bias] or [g, b, mean, var].
        layer.set_weights(weights[:1] + [
            w + np.abs(rng.normal(size=w.shape)).astype(w.dtype) * 0.1
            for w in weights[1:]])
    path = os.path.join(tempfile.mkdtemp(), "resnet50.weights.h5")
    reference.save_weights(path)
    model = pspnet.pspnet(input_shape=(64, 64, 3), backbone_weights=path)
    # Up to conv3 (before any dilation) both networks compute the same map.
    x = tf.random.normal([1, 64, 64, 3])
    features = [keras.Model(m.input, m.get_layer("conv3_block4_out").output)(
        x, training=False) for m in (reference, model)]
    self.assertAllClose(features[0], features[1], rtol=1e-4, atol=1e-4)
    self.assertGreater(float(tf.reduce_max(features[0])), 0.1)

  def test_hypergradient_through_pspnet_matches_finite_differences(self):
    # tf.image.resize would silently drop second derivatives; this checks
    # every PSPNet op (dilation, max pool, pyramid pooling, resizing, BN,
    # both heads, ignore label) carries them. One step and a linear DLN
    # (slope 1) keep e(phi) smooth: with LeakyReLU kinks in the DLN and
    # ReLU kinks in later steps, e(phi) has jumps finer than any eps.
    keras.utils.set_random_seed(0)
    task = segmentation.SegmentationTask(crop_size=16, dtype="float64")
    student = pspnet.pspnet(input_shape=(16, 16, 3), depth=14, width=4,
                            dropout=0.0, dtype="float64")
    dln = dln_lib.classification_dln(ignore_label=255, negative_slope=1.0,
                                     hidden_units=(8, 8), dtype="float64")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 21, (1, 4, 16, 16))
    labels[rng.random(labels.shape) < 0.1] = 255
    batches = (tf.constant(rng.normal(size=(1, 4, 16, 16, 3))),
               tf.constant(labels, tf.int32))
    validation = (batches[0][0], batches[1][0])

    unroll = gradcheck.compiled_unroll(
        student, lambda y, out: task.student_loss(dln, y, out),
        task.validation_error, batches, validation, 0.1, dln)

    analytic_grads = unroll().gradients
    analytic, finite_difference = gradcheck.directional_check(
        dln.trainable_variables, lambda: unroll().validation_error,
        analytic_grads, eps=1e-7)
    self.assertGreater(abs(analytic), 1e-3)
    self.assertAllClose(analytic, finite_difference, rtol=1e-5)

  def test_missing_backbone_weights_is_a_user_error(self):
    with self.assertRaisesRegex(errors.UserError, "no such file"):
      pspnet.pspnet(input_shape=(32, 32, 3), depth=14, width=8,
                    backbone_weights="/nonexistent/resnet50.h5")


class DataTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    cls.manual_dir = os.path.join(cls.root, "manual")
    cls.expected = fake_voc_sbd.write_archives(cls.manual_dir)

  def test_builder_reads_the_real_layout(self):
    data_dir = os.path.join(self.root, "data")
    for split in ("train", "validation"):
      data, size = voc_sbd.load(split, data_dir, self.manual_dir)
      examples = {ex["file_id"].numpy().decode(): ex for ex in data}
      self.assertEqual(sorted(examples), sorted(self.expected[split]))
      self.assertEqual(size, len(self.expected[split]))
      for file_id, ex in examples.items():
        mask = ex["segmentation_mask"].numpy()[..., 0]
        truth = self.expected["masks"][file_id]
        self.assertEqual(ex["image"].shape[:2], truth.shape)
        if file_id.startswith("2009"):  # SBD only: the .mat mask, exactly.
          self.assertAllEqual(mask, truth)
        else:  # VOC palette PNG: classes inside, 255 on object borders.
          keep = mask != 255
          self.assertAllEqual(mask[keep], truth[keep])
          self.assertTrue((~keep).any())

  def test_missing_archive_names_files_and_directory(self):
    empty = os.path.join(self.root, "empty_manual")
    with self.assertRaises(errors.UserError) as ctx:
      voc_sbd.load("train", os.path.join(self.root, "d1"), empty)
    message = str(ctx.exception)
    for text in (voc_sbd.VOC_ARCHIVE, voc_sbd.SBD_ARCHIVE,
                 os.path.abspath(empty)):
      self.assertIn(text, message)

  def test_incomplete_archive_is_a_user_error_from_inside_tfds(self):
    broken = os.path.join(self.root, "broken_manual")
    os.makedirs(broken)
    os.symlink(os.path.join(self.manual_dir, voc_sbd.SBD_ARCHIVE),
               os.path.join(broken, voc_sbd.SBD_ARCHIVE))
    with tarfile.open(os.path.join(broken, voc_sbd.VOC_ARCHIVE), "w") as tar:
      tar.add(__file__, "VOCdevkit/VOC2012/JPEGImages/readme.txt")
    data_dir = os.path.join(self.root, "d2")
    with self.assertRaisesRegex(errors.UserError,
                                "incomplete.*SegmentationClass"):
      voc_sbd.load("train", data_dir, broken)
    # Replacing the archive is enough: the stale extraction is not reused.
    os.remove(os.path.join(broken, voc_sbd.VOC_ARCHIVE))
    os.symlink(os.path.join(self.manual_dir, voc_sbd.VOC_ARCHIVE),
               os.path.join(broken, voc_sbd.VOC_ARCHIVE))
    self.assertEqual(voc_sbd.load("validation", data_dir, broken)[1],
                     len(self.expected["validation"]))

  def test_evaluate_counts_every_full_resolution_pixel(self):
    data_dir = os.path.join(self.root, "data")
    task = segmentation.SegmentationTask(crop_size=32, data_dir=data_dir,
                                         manual_dir=self.manual_dir)
    inputs = keras.Input((32, 32, 3))
    background = keras.layers.Lambda(  # Always predicts class 0.
        lambda x: tf.one_hot(tf.zeros(tf.shape(x)[:3], tf.int32), 21))(inputs)
    model = keras.Model(inputs, [background, background])
    result = task.evaluate(model, task.test_batches(8))
    masks = np.concatenate([y.numpy().ravel() for _, y in task.test_set()])
    masks = masks[masks != 255]
    accuracy = np.mean(masks == 0)
    self.assertAllClose(result["test_pixel_accuracy"], accuracy)
    self.assertAllClose(result["test_iou/background"], accuracy)
    self.assertAllClose(result["test_miou"], accuracy / len(np.unique(masks)))

  def test_preprocessing_shapes_ignore_padding_and_determinism(self):
    task = segmentation.SegmentationTask(crop_size=64)
    x = tf.fill([20, 30, 3], tf.constant(128, tf.uint8))
    y = tf.ones([20, 30], tf.uint8)
    seed = tf.constant([3, 4], tf.int64)
    xa, ya = task.preprocess_train(x, y, seed)
    xb, yb = task.preprocess_train(x, y, seed)
    self.assertEqual(xa.shape, (64, 64, 3))
    self.assertEqual(ya.dtype, tf.int32)
    self.assertAllEqual(ya, yb)
    self.assertAllClose(xa, xb)
    # At most 2.0 x 30 = 60 < 64 columns of image: the rest is ignore.
    self.assertAllEqual(np.unique(ya.numpy()), [1, 255])
    xe, ye = task.preprocess_eval(x, y)
    self.assertEqual(int(tf.reduce_sum(tf.cast(ye == 1, tf.int32))), 600)


class GinTest(tf.test.TestCase):

  def test_ce_baseline_config_is_the_same_schedule(self):
    config.parse(["pspnet_voc_ce.gin"])
    round_ = gin.query_parameter("build.round")
    self.assertEqual(round_.selector.split(".")[-1], "FixedLossRound")
    self.assertEqual(gin.query_parameter("Trainer.unroll_length"), 2)
    self.assertEqual(gin.query_parameter("Trainer.batch_size"), 2)
    self.assertEqual(gin.query_parameter("Trainer.validation_batch_size"), 8)


class EndToEndTest(tf.test.TestCase):

  def test_pspnet_voc_gin_trains_and_reports_miou(self):
    root = tempfile.mkdtemp()
    manual_dir = os.path.join(root, "manual")
    fake_voc_sbd.write_archives(manual_dir, voc_train=6, sbd_only=8)
    model_dir = os.path.join(root, "run")
    config.parse(["pspnet_voc.gin"], [
        f"train_eval.model_dir = '{model_dir}'",
        f"SegmentationTask.data_dir = '{os.path.join(root, 'data')}'",
        f"SegmentationTask.manual_dir = '{manual_dir}'",
        "SegmentationTask.crop_size = 32",
        "pspnet.depth = 14", "pspnet.width = 8",
        "Trainer.teacher_epochs = 1", "Trainer.rounds_per_epoch = 2",
        "Trainer.validation_batch_size = 2", "Trainer.train_comparison = False",
        "Trainer.progress = False"])
    with mock.patch.object(train_eval_lib.build_lib, "build",
                           trainer_testlib.SpyBuild.build):
      results = train_eval_lib.train_eval()
    trainer = trainer_testlib.SpyBuild.instances[-1]
    with open(os.path.join(model_dir, "results.json")) as f:
      saved = json.load(f)
    self.assertEqual(results["rounds_done"], 2)
    self.assertEqual(saved["primary_metric"], "test_miou")
    self.assertBetween(saved["test_miou"], 0.0, 1.0)
    self.assertIn("test_iou/background", saved)
    self.assertEqual(results["skipped_updates"], 0)
    changed = [not np.allclose(a, v.numpy()) for a, v in
               zip(trainer_testlib.SpyBuild.initial_dln,
                   trainer.dln.trainable_variables)]
    self.assertTrue(all(changed), changed)


if __name__ == "__main__":
  tf.test.main()

"""Semantic segmentation: PSPNet on PASCAL VOC 2012 + SBD (paper Sec. 4.3).

Student: `pspnet` returning [main_logits, aux_logits], each [B, H, W, 21].
Student loss: DLN(p, y) + 0.4 * DLN(aux_p, y), the pairwise (classification)
DLN applied per pixel, pixels labelled 255 ignored. Validation error (e_val):
CE(p, y) + 0.4 * CE(aux_p, y), same ignore label. Metric: mIoU over the 21
classes from one confusion matrix accumulated over VOC val, evaluated at full
resolution with a sliding window of the crop size (`segmentation_metrics`).

Training augmentation (PSPNet, Sec. 4.1): random scale in [0.5, 2.0],
horizontal flip, random crop of `crop_size` with labels padded by 255 and
images by the mean; stateless, so a resumed run sees the same pixels.
Teacher validation batches are padded / centre-cropped to the crop size.
"""
import gin
import numpy as np
import tensorflow as tf

from l2t_tf import checks
from l2t_tf import dln as dln_lib
from l2t_tf import errors
from l2t_tf.data import voc_sbd
from l2t_tf.students import pspnet
from l2t_tf.tasks import base
from l2t_tf.tasks import segmentation_metrics as metrics_lib

AUX_WEIGHT = 0.4  # Zhao et al. 2017, Sec. 3.3; L2T-DLN Sec. 4.3.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def masked_cross_entropy(y_true, logits, ignore_label=voc_sbd.IGNORE_LABEL):
  """Mean softmax CE over pixels whose label is not `ignore_label`.

  y_true int [B, H, W] (or [B, H, W, 1]); logits [B, H, W, C]; scalar (0 if
  every pixel is ignored).
  """
  labels = tf.reshape(tf.cast(y_true, tf.int32), tf.shape(logits)[:-1])
  valid = tf.not_equal(labels, ignore_label)
  ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=tf.where(valid, labels, 0), logits=logits)
  valid = tf.cast(valid, ce.dtype)
  return tf.math.divide_no_nan(tf.reduce_sum(ce * valid), tf.reduce_sum(valid))


def normalize(image):
  """uint8 [..., 3] -> float32, ImageNet mean/std normalised (mean -> 0)."""
  image = tf.cast(image, tf.float32) / 255.0
  return (image - IMAGENET_MEAN) / IMAGENET_STD


def pad_to(x, y, height, width):
  """Pads x (with 0 = the mean) and y (with 255) to at least height x width."""
  pad_h = tf.maximum(height - tf.shape(x)[0], 0)
  pad_w = tf.maximum(width - tf.shape(x)[1], 0)
  x = tf.pad(x, [[0, pad_h], [0, pad_w], [0, 0]])
  y = tf.pad(y, [[0, pad_h], [0, pad_w]],
             constant_values=voc_sbd.IGNORE_LABEL)
  return x, y


@gin.configurable
class SegmentationTask(base.Task):
  """VOC 2012 (+ SBD) segmentation taught through the per-pixel DLN."""
  name = "segmentation_voc"
  primary_metric = "test_miou"
  shuffle_buffer = 500  # Full-size images: keep the buffer's memory bounded.

  def __init__(self, student=pspnet.pspnet, dln=dln_lib.classification_dln,
               crop_size=473, scale_range=(0.5, 2.0), data_dir=None,
               manual_dir=None, aux_weight=AUX_WEIGHT, eval_stride_ratio=2 / 3,
               num_overlays=3, dln_pixel_stride=1, dtype=None):
    """See the class docstring; `dln_pixel_stride` is a memory lever.

    dln_pixel_stride: apply the DLN to every s-th pixel of every s-th row
      (a regular grid, s^2 fewer DLN rows and activations; 1 = every pixel,
      the paper). The per-pixel DLN dominates the memory of the unrolled
      graph at 473 x 473; the validation error always uses every pixel.
    """
    name = "SegmentationTask.{}".format
    self.dln_pixel_stride = checks.integer(name("dln_pixel_stride"),
                                           dln_pixel_stride, 1)
    self.student_fn, self.dln_fn = student, dln
    self.dtype = checks.float_dtype(name("dtype"), dtype)
    self.crop_size = checks.integer(name("crop_size"), crop_size, 1)
    self.scale_range = checks.number_range(name("scale_range"), scale_range)
    self.data_dir, self.manual_dir = data_dir, manual_dir
    self.aux_weight, self.num_overlays = float(aux_weight), int(num_overlays)
    self.eval_stride_ratio = float(eval_stride_ratio)
    self.num_classes = voc_sbd.NUM_CLASSES
    self._evaluations = {}

  # ---- models and losses ------------------------------------------------
  def build_student(self):
    return checks.call("SegmentationTask.student", self.student_fn,
                       input_shape=(self.crop_size, self.crop_size, 3),
                       num_classes=self.num_classes, dtype=self.dtype)

  def build_dln(self):
    return checks.call("SegmentationTask.dln", self.dln_fn,
                       ignore_label=voc_sbd.IGNORE_LABEL, dtype=self.dtype)

  def _weighted(self, loss_fn, y, outputs):
    main, aux = outputs
    return loss_fn(y, main) + self.aux_weight * loss_fn(y, aux)

  def student_loss(self, dln, y, outputs):
    """DLN(p, y) + 0.4 DLN(aux_p, y), per pixel, 255 ignored."""
    s = self.dln_pixel_stride
    if s > 1:
      y = y[:, ::s, ::s]
      outputs = [o[:, ::s, ::s] for o in outputs]
    return self._weighted(dln, y, outputs)

  def validation_error(self, y, outputs):
    """CE(p, y) + 0.4 CE(aux_p, y), 255 ignored."""
    return self._weighted(masked_cross_entropy, y, outputs)

  def fixed_loss(self, y, outputs):
    return self.validation_error(y, outputs)

  # ---- data -------------------------------------------------------------
  def _load(self, split):
    data, size = voc_sbd.load(split, self.data_dir, self.manual_dir)
    return data.map(lambda ex: (ex["image"], ex["segmentation_mask"][..., 0]),
                    num_parallel_calls=tf.data.AUTOTUNE), size

  def training_set(self):
    return self._load("train")

  def test_set(self):
    return self._load("validation")[0]

  def preprocess_train(self, x, y, seed):
    """Random scale, flip, crop (PSPNet); x [h, w, 3] uint8, y [h, w] uint8.

    Returns x float32 [crop, crop, 3] and y int32 [crop, crop].
    """
    seeds = tf.random.experimental.stateless_split(
        tf.cast(seed, tf.int64), num=4)
    scale = tf.random.stateless_uniform(
        [], seeds[0], self.scale_range[0], self.scale_range[1])
    size = tf.cast(tf.round(tf.cast(tf.shape(x)[:2], tf.float32) * scale),
                   tf.int32)
    x = tf.image.resize(normalize(x), size, method="bilinear")
    y = tf.image.resize(y[..., None], size, method="nearest")[..., 0]
    flip = tf.random.stateless_uniform([], seeds[1]) < 0.5
    x = tf.cond(flip, lambda: tf.reverse(x, [1]), lambda: x)
    y = tf.cond(flip, lambda: tf.reverse(y, [1]), lambda: y)
    x, y = pad_to(x, y, self.crop_size, self.crop_size)
    top = tf.random.stateless_uniform(
        [], seeds[2], 0, tf.shape(x)[0] - self.crop_size + 1, tf.int32)
    left = tf.random.stateless_uniform(
        [], seeds[3], 0, tf.shape(x)[1] - self.crop_size + 1, tf.int32)
    return self._crop(x, y, top, left)

  def _crop(self, x, y, top, left):
    c = self.crop_size
    x = tf.ensure_shape(x[top:top + c, left:left + c], [c, c, 3])
    y = tf.ensure_shape(y[top:top + c, left:left + c], [c, c])
    return x, tf.cast(y, tf.int32)

  def preprocess_eval(self, x, y):
    """Normalise, pad with ignore and centre-crop to the crop size."""
    x, y = pad_to(normalize(x), y, self.crop_size, self.crop_size)
    top = (tf.shape(x)[0] - self.crop_size) // 2
    left = (tf.shape(x)[1] - self.crop_size) // 2
    return self._crop(x, y, top, left)

  def test_batches(self, batch_size):
    """Full-resolution (x, y) one image at a time (sizes differ)."""
    return self.heldout_batches(self.test_set(), batch_size)

  def heldout_batches(self, examples, batch_size):
    """Full-resolution (x, y) one image at a time, as the test set."""
    del batch_size  # The sliding window batches the windows instead.
    return examples.map(
        lambda x, y: (normalize(x), tf.cast(y, tf.int32))).batch(1)

  def dummy_batch(self, student, batch_size=2):
    c = self.crop_size
    x = tf.zeros([batch_size, c, c, 3], tf.float32)
    y = tf.zeros([batch_size, c, c], tf.int32)
    return y, student(x, training=False)  # (main, aux) logits.

  def check_labels(self, student, y):
    values = np.unique(np.asarray(y))
    bad = values[(values >= self.num_classes) &
                 (values != voc_sbd.IGNORE_LABEL)]
    if bad.size or values.min() < 0:
      raise errors.UserError(
          f"labels: segmentation masks hold {values.tolist()}, expected "
          f"0..{self.num_classes - 1} and {voc_sbd.IGNORE_LABEL} (ignore) "
          f"for the {self.num_classes} outputs of '{student.name}'.")

  # ---- evaluation -------------------------------------------------------
  def evaluate(self, student, dataset):
    """mIoU, pixel accuracy and per-class IoU (test_iou/<class>)."""
    predictor = metrics_lib.SlidingWindow(student, self.crop_size,
                                          self.eval_stride_ratio)
    confusion = np.zeros([self.num_classes] * 2, np.int64)
    overlays = []
    for x, y in dataset:
      for xi, yi in zip(x, y):
        prediction = predictor(xi)
        confusion += metrics_lib.confusion_matrix(
            yi.numpy(), prediction, self.num_classes, voc_sbd.IGNORE_LABEL)
        if len(overlays) < self.num_overlays:
          overlays.append(metrics_lib.overlay(xi, yi, prediction,
                                              IMAGENET_MEAN, IMAGENET_STD))
    self._write_overlays(student, overlays)
    return metrics_lib.segmentation_metrics(confusion, voc_sbd.CLASS_NAMES)

  def _write_overlays(self, student, overlays):
    """TensorBoard images [image | truth | prediction] if a writer is set.

    One series per student object (the taught student and its CE baseline
    share a name), stepped by the number of its evaluations.
    """
    label, step = self._evaluations.get(id(student), (None, 0))
    if label is None:
      taken = {l for l, _ in self._evaluations.values()}
      label = student.name
      while label in taken:
        label += "_"
    self._evaluations[id(student)] = (label, step + 1)
    if overlays and tf.summary.should_record_summaries():
      for i, image in enumerate(overlays):
        tf.summary.image(f"overlays/{label}/{i}", image[None], step=step + 1)

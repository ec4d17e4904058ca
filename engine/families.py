"""The built-in model families. Each names its model builder, trainer and predictor by
reference, so listing the families imports no trainer or predictor (no import cycles; see
docs/adr/0019-family-registry.md). A new family is one more ``register_family`` call here or in
a plugin package (entry point group ``visionbench.families``); no GUI or CLI code changes.
"""
from __future__ import annotations

from engine.models import pix2pix, rcnn, siamese, style, unet, yolo
from engine.models.registry import FamilySpec, Option, register_family

_DETECTOR_OPTIONS = (
    Option("batch_size", "images per step", minimum=1, maximum=256),
    Option("lr", "learning rate", minimum=1e-6, maximum=1.0),
    Option("hflip", "random horizontal flips"),
    Option("vflip", "random vertical flips"),
    Option("pretrained", "start from the shipped ImageNet EfficientNet-Lite0 weights"),
)

register_family(FamilySpec(
    name="unet", kind="segmentation", metric="miou",
    model="engine.models.unet:build_unet", trainer="engine.train.segmentation:UNetTrainer",
    predictor="engine.infer.unet_predictor:UNetPredictor",
    cpu_preset=unet.CPU_PRESET, gpu_preset=unet.GPU_PRESET,
    description="U-Net semantic segmentation (plain or pretrained EfficientNet-Lite0 encoder), "
                "weighted cross-entropy with the paper's border weight map, or Dice",
    options=(
        Option("encoder", "plain: the paper's encoder; efficientnet_lite0: pretrained", choices=unet.ENCODERS),
        Option("width", "channels of the first level", minimum=2, maximum=256),
        Option("depth", "down-sampling steps (plain encoder)", minimum=1, maximum=6),
        Option("loss", "wce: weighted cross-entropy with the border weight map", choices=unet.LOSSES),
        Option("batch_size", "crops per step", minimum=1, maximum=256),
        Option("crop", "training crop size (pixels)", minimum=16, maximum=2048),
        Option("lr", "learning rate", minimum=1e-6, maximum=1.0),
        Option("augment", "flips, elastic deformation, colour jitter"),
        Option("w0", "border weight w0 of the weight map", minimum=0.0, maximum=100.0),
        Option("sigma", "border width sigma of the weight map (pixels)", minimum=0.5, maximum=50.0),
    ),
    previews={"heatmaps": "heatmap", "argmax": "class_map", "weight_map": "heatmap"},
))

for _name, _kind, _metric, _build, _trainer, _what in (
        ("fasterrcnn", "detection", "box_map50", "build_fasterrcnn", "FasterRcnnTrainer", "boxes"),
        ("maskrcnn", "instance", "mask_map50", "build_maskrcnn", "MaskRcnnTrainer", "boxes and instance masks")):
    register_family(FamilySpec(
        name=_name, kind=_kind, metric=_metric,
        model=f"engine.models.rcnn:{_build}", trainer=f"engine.train.rcnn:{_trainer}",
        predictor="engine.infer.rcnn_predictor:RcnnPredictor.from_checkpoint",
        cpu_preset=rcnn.CPU_PRESET, gpu_preset=rcnn.GPU_PRESET,
        description=f"{'Mask' if _name == 'maskrcnn' else 'Faster'} R-CNN (torchvision) on an "
                    f"EfficientNet-Lite0 FPN: {_what}",
        options=(Option("backbone", "feature extractor", choices=rcnn.BACKBONES),
                 Option("min_size", "shorter image side the model sees (pixels)", minimum=32, maximum=2048),
                 Option("max_size", "longer image side at most (pixels)", minimum=32, maximum=4096),
                 *_DETECTOR_OPTIONS),
    ))

register_family(FamilySpec(
    name="yolo", kind="detection", metric="box_map50",
    model="engine.models.yolo:build_yolo", trainer="engine.train.yolo:YoloTrainer",
    predictor="engine.infer.yolo_predictor:YoloPredictor.from_checkpoint",
    cpu_preset=yolo.CPU_PRESET, gpu_preset=yolo.GPU_PRESET,
    description="YOLO (v1-style S x S grid, B boxes per cell) on EfficientNet-Lite0: boxes",
    options=(Option("input_size", "square network input (pixels)", minimum=32, maximum=1024),
             Option("boxes_per_cell", "B: boxes each grid cell predicts", minimum=1, maximum=5),
             Option("lambda_coord", "weight of the box terms", minimum=0.0, maximum=100.0),
             Option("lambda_noobj", "weight of the no-object confidence term", minimum=0.0, maximum=10.0),
             *_DETECTOR_OPTIONS),
))

register_family(FamilySpec(
    name="faststyle", kind="image2image", metric="score",
    model="engine.models.style:build_transformer", trainer="engine.train.faststyle:FastStyleTrainer",
    predictor="engine.infer.faststyle_predictor:load",
    cpu_preset=style.FASTSTYLE_CPU_PRESET, gpu_preset=style.FASTSTYLE_GPU_PRESET,
    description="Fast style (Johnson et al.): a transformer network learns one style image on the project's "
                "images with Gatys' perceptual losses; then one forward pass stylises any image",
    options=(Option("style", "style image: a file, or a scikit-image texture (brick, grass, gravel)"),
             Option("network", "feature network of the losses (vgg19 only when its weights are on this machine)",
                    choices=style.NETWORKS),
             Option("beta", "style weight (content weight alpha is 1)", minimum=0.0, maximum=1e12),
             Option("tv_weight", "total-variation weight (smoothness)", minimum=0.0, maximum=1e6),
             Option("width", "channels of the first layer", minimum=4, maximum=128),
             Option("residual_blocks", "residual blocks", minimum=1, maximum=10),
             Option("crop", "training crop (pixels)", minimum=32, maximum=1024),
             Option("batch_size", "crops per step", minimum=1, maximum=64),
             Option("lr", "learning rate", minimum=1e-6, maximum=1.0)),
))

register_family(FamilySpec(
    name="gatys", kind="optimisation", metric="score",
    model="engine.models.style:build_feature_network", trainer="engine.train.gatys:GatysTrainer",
    predictor="engine.infer.faststyle_predictor:no_predictor",
    cpu_preset=style.GATYS_PRESET, gpu_preset={**style.GATYS_PRESET, "size": 512},
    description="Style transfer (Gatys et al.): the picture is optimised so its features match the content "
                "image and its Gram matrices match the style image",
    options=(Option("content", "content image: a file or a scikit-image photo (astronaut, ...)"),
             Option("style", "style image: a file or a texture (brick, grass, gravel)"),
             Option("network", "feature network (vgg19 only when its weights are on this machine)",
                    choices=style.NETWORKS),
             Option("optimizer", "L-BFGS (the paper's) or Adam", choices=("lbfgs", "adam")),
             Option("init", "start from", choices=("content", "noise", "style")),
             Option("size", "long side of the picture (pixels)", minimum=32, maximum=2048),
             Option("steps", "optimisation steps", minimum=1, maximum=100000),
             Option("alpha", "content weight", minimum=0.0, maximum=1e12),
             Option("beta", "style weight", minimum=0.0, maximum=1e12),
             Option("tv_weight", "total-variation weight", minimum=0.0, maximum=1e12),
             Option("style_layers", "style layers by name, comma-separated (empty: the network's default)"),
             Option("style_weights", "one weight per style layer, comma-separated (empty: equal)"),
             Option("content_layer", "content layer by name (empty: the network's default)")),
))

register_family(FamilySpec(
    name="siamese", kind="embedding", metric="oneshot_acc_20way",
    model="engine.models.siamese:build_siamese", trainer="engine.train.siamese:SiameseTrainer",
    predictor="engine.infer.siamese_predictor:SiamesePredictor.from_checkpoint",
    cpu_preset=siamese.CPU_PRESET, gpu_preset=siamese.GPU_PRESET,
    description="Siamese embedding on pretrained EfficientNet-Lite0: verification (d <= tau), one-shot "
                "recognition and image search; triplet (batch-hard / semi-hard), contrastive or binary loss",
    options=(Option("loss", "triplet: margin on d(a,p) - d(a,n); contrastive: pairs; binary: same/different head",
                    choices=siamese.LOSSES),
             Option("mining", "triplets: batch_hard (hardest positive and negative) or semi_hard (FaceNet)",
                    choices=siamese.MINING),
             Option("margin", "triplet margin alpha (distances lie in 0..2)", minimum=0.0, maximum=2.0),
             Option("embedding_dim", "embedding dimension", minimum=2, maximum=2048),
             Option("input_size", "square crop the encoder sees (pixels)", minimum=32, maximum=512),
             Option("p_identities", "P: identities per batch", minimum=2, maximum=512),
             Option("k_per_identity", "K: images per identity in a batch", minimum=2, maximum=64),
             Option("lr", "learning rate", minimum=1e-6, maximum=1.0),
             Option("augment", "small random rotation, scale, shift and brightness"),
             Option("scatter", "live 2-D view of the validation embeddings", choices=siamese.SCATTER)),
    previews={"embedding": "scatter", "hardest triplets": "image_row"},
))

_PIX2PIX_OPTIONS = (
    Option("pairs", "what to translate: stored targets (imported pairs, the galaxies' noise-free model), "
                    "masks -> photo, Canny edges -> photo, gray -> colour, noisy/blurred -> clean, L* -> a*b*",
           choices=pix2pix.PAIRS),
    Option("folder", "train on the images of this folder instead of the project's (empty: the project)"),
    Option("size", "training crop side (pixels, a multiple of 2**depth)", minimum=16, maximum=1024),
    Option("width", "generator channels of the first level", minimum=4, maximum=256),
    Option("depth", "generator down-steps (the U-Net's levels)", minimum=2, maximum=8),
    Option("ndf", "discriminator channels of the first layer", minimum=4, maximum=256),
    Option("n_layers", "PatchGAN stride-2 layers (3: 70 x 70 patches)", minimum=1, maximum=5),
    Option("gan_loss", "vanilla: BCE; lsgan: least squares", choices=pix2pix.GAN_LOSSES),
    Option("lambda_l1", "weight of the L1 term", minimum=0.0, maximum=1000.0),
    Option("gan_weight", "weight of the GAN term (0: L1 only)", minimum=0.0, maximum=10.0),
    Option("batch_size", "pairs per step", minimum=1, maximum=256),
    Option("lr", "Adam learning rate of both networks", minimum=1e-6, maximum=1.0),
)
for _name, _cpu, _gpu, _what in (
        ("pix2pix", pix2pix.CPU_PRESET, pix2pix.GPU_PRESET,
         "pix2pix: U-Net generator and PatchGAN discriminator (cGAN + λ·L1) on image pairs"),
        ("colorize", pix2pix.COLORIZE_CPU_PRESET, pix2pix.COLORIZE_GPU_PRESET,
         "colorization: pix2pix predicting the a*b* of Lab from L* (L1 + optional GAN), on photos")):
    register_family(FamilySpec(
        name=_name, kind="image2image", metric="psnr",
        model="engine.models.pix2pix:build_pix2pix", trainer="engine.train.pix2pix:Pix2PixTrainer",
        predictor="engine.infer.pix2pix_predictor:Pix2PixPredictor.from_checkpoint",
        cpu_preset=_cpu, gpu_preset=_gpu, description=_what, options=_PIX2PIX_OPTIONS,
        previews={"translations": "image_row", "D on generated": "heatmap", "D on real": "heatmap"}))

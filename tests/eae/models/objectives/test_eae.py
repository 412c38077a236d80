import torch

from eae.models.entropy import kl_entropy
from eae.models.networks import ArchConfig
from eae.models.objectives.base import reconstruction_loss
from eae.models.objectives.eae import EAE
from eae.training.seed import seed_everything

SMALL = ArchConfig(image_shape=(1, 16, 16), latent_dim=4, encoder_channels=(8, 16), decoder_channels=(16, 8))


def test_reconstruction_loss_is_sum_over_pixels_mean_over_batch():
    x = torch.zeros(4, 1, 2, 2)
    assert float(reconstruction_loss(x + 0.5, x)) == 4 * 0.25


def test_code_is_batch_normalised_without_affine():
    model = EAE(SMALL, entropy_weight=0.1).train()
    z = model.encode(torch.rand(64, 1, 16, 16))
    assert model.code_norm.affine is False
    torch.testing.assert_close(z.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.var(0, unbiased=False), torch.ones(4), atol=1e-3, rtol=0)


def test_loss_is_recon_minus_beta_entropy_plus_l2():
    seed_everything(0)
    model = EAE(SMALL, entropy_weight=0.3, entropy_k=2)
    x = torch.rand(50, 1, 16, 16)
    loss, stats = model.loss(x)
    z, x_hat = model(x)
    torch.testing.assert_close(stats["recon"], reconstruction_loss(x_hat, x).detach())
    torch.testing.assert_close(stats["entropy"], kl_entropy(z, k=2).detach())
    torch.testing.assert_close(loss.detach(), stats["recon"] - 0.3 * stats["entropy"])
    with_l2 = EAE(SMALL, entropy_weight=0.3, entropy_k=2, decoder_l2=1e-3)
    with_l2.load_state_dict(model.state_dict())
    loss_l2, _ = with_l2.loss(x)
    torch.testing.assert_close(loss_l2.detach() - loss.detach(), 1e-3 * model.decoder.weight_l2().detach())


def test_spectral_norm_is_a_weight_of_the_eae():
    assert EAE(SMALL, entropy_weight=0.1, spectral_norm=True).arch.spectral_norm
    assert not EAE(SMALL, entropy_weight=0.1).arch.spectral_norm


def test_entropy_weight_schedule_is_linear_and_off_by_default():
    constant = EAE(SMALL, entropy_weight=0.3)
    constant.start_epoch(5)
    assert constant.entropy_weight == 0.3 and constant.describe()["weights"]["entropy_ramp_epochs"] == 0
    warmup = EAE(SMALL, entropy_weight=0.4, entropy_start_weight=0.0, entropy_ramp_epochs=4)
    seen = []
    for epoch in range(6):
        warmup.start_epoch(epoch)
        seen.append(round(warmup.entropy_weight, 6))
    assert seen == [0.0, 0.1, 0.2, 0.3, 0.4, 0.4]
    cooldown = EAE(SMALL, entropy_weight=0.1, entropy_start_weight=1.0, entropy_ramp_epochs=2)
    cooldown.start_epoch(1)
    assert abs(cooldown.entropy_weight - 0.55) < 1e-12
    assert cooldown.describe()["weights"]["entropy_start_weight"] == 1.0


def test_entropy_queue_adds_this_epochs_codes_and_starts_empty_each_epoch():
    torch.manual_seed(0)
    x = [torch.rand(20, 1, 16, 16) for _ in range(3)]
    plain = EAE(SMALL, entropy_weight=0.3)
    queued = EAE(SMALL, entropy_weight=0.3, entropy_queue=30)
    queued.load_state_dict(plain.state_dict())
    plain.train(), queued.train()
    # The first minibatch of an epoch: empty queue, exactly the paper's batch estimate.
    assert torch.equal(plain.loss(x[0])[0], queued.loss(x[0])[0]) and len(queued.queue) == 20
    first = queued.queue.clone()
    _, stats = queued.loss(x[1])
    assert len(queued.queue) == 30  # newest first, capped
    with torch.no_grad():
        z1 = queued.encode(x[1])  # train mode: the codes the loss saw (no step was taken)
    assert torch.equal(queued.queue[:20], z1) and torch.equal(queued.queue[20:], first[:10])
    assert float(stats["entropy"]) == float(kl_entropy(z1, reference=first))
    queued.eval()
    queued.loss(x[2])  # an evaluation pass does not feed the queue
    assert torch.equal(queued.queue[:20], z1)
    queued.start_epoch(1)
    assert queued.queue is None
    assert queued.describe()["weights"]["entropy_queue"] == 30

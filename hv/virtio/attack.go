package virtio

// attackHook, nil in every build but the sandbox tests' (build tag
// pvisor_attack, attack_hook.go), stands for device code a guest has
// compromised: it is called after each write a guest makes, with the
// disk and the written offset.
var attackHook func(s BlockStore, off int64)

package repository

import "testing"

func TestLockHoldersAreJudgedOnlyWhereTheirPIDsMeanSomething(t *testing.T) {
	r := &Repository{}
	me := r.holder()
	if r.holderDied(me) {
		t.Fatal("this live process is taken for dead")
	}
	gone := me
	gone.Start++ // the PID now names another process
	if !r.holderDied(gone) {
		t.Fatal("a holder whose process is gone is taken for alive")
	}

	// A plugin in its own PID namespace: its PID 1 is not this namespace's PID 1.
	plugin := me
	plugin.PID, plugin.Start, plugin.PIDNS, plugin.Agent = 1, me.Start+12345, "pid:[1]", "swarmbackup plugin of engine E"
	if r.holderDied(plugin) {
		t.Fatal("a live plugin's lock is taken for dead by a process in another PID namespace")
	}
	// The plugin itself, restarted in a new namespace, knows the old lock is its own.
	r.SetAgent("swarmbackup plugin of engine E")
	if !r.holderDied(plugin) {
		t.Fatal("a restarted plugin does not recognise the lock its killed predecessor left")
	}
	r.SetAgent("swarmbackup plugin of engine F")
	if r.holderDied(plugin) {
		t.Fatal("another engine's plugin is taken for dead")
	}
}

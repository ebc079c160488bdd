package main

// cmdPause is `pause ID`: freeze every process of a running container.
func cmdPause(g *globals, args []string) error {
	id, err := onlyID("pause", args)
	if err != nil {
		return err
	}
	return g.runtime().Pause(id)
}

// cmdResume is `resume ID`: thaw a paused container.
func cmdResume(g *globals, args []string) error {
	id, err := onlyID("resume", args)
	if err != nil {
		return err
	}
	return g.runtime().Resume(id)
}

// onlyID parses the arguments of a verb that takes no options and exactly
// the container id.
func onlyID(verb string, args []string) (string, error) {
	pos, err := parse(newFlags(verb), args)
	if err != nil {
		return "", err
	}
	return needID(verb, pos, 0)
}

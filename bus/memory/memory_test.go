package memory_test

import (
	"testing"

	"github.com/heraldim/herald/bus"
	"github.com/heraldim/herald/bus/bustest"
	"github.com/heraldim/herald/bus/memory"
)

func TestBus(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bus.Bus { return memory.New() })
}

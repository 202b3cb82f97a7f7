package dataset

import (
	"fmt"
	"path/filepath"
)

// Split names an official split of a data set.
type Split string

// The official splits of MNIST and Fashion-MNIST. Other sets have no official split; pkg/tasks
// makes fixed seeded ones.
const (
	Train Split = "train"
	Test  Split = "test"
)

// Images is a labelled set of same-sized gray images.
type Images struct {
	N, Height, Width int
	Pixels           []uint8  // N*Height*Width, row-major; 0 = background, 255 = full ink
	Labels           []uint8  // N class indices into Classes
	Classes          []string // class names
}

// Image returns the pixels of image i (a sub-slice, not a copy).
func (im *Images) Image(i int) []uint8 {
	n := im.Height * im.Width
	return im.Pixels[i*n : (i+1)*n]
}

// DigitNames are MNIST's classes.
var DigitNames = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}

// FashionNames are Fashion-MNIST's classes, in label order.
var FashionNames = []string{"t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"}

// MNIST loads the MNIST digits of a split (60,000 train or 10,000 test).
func MNIST(split Split) (*Images, error) { return loadIDXImages("mnist", split, DigitNames) }

// FashionMNIST loads Fashion-MNIST of a split (60,000 train or 10,000 test).
func FashionMNIST(split Split) (*Images, error) {
	return loadIDXImages("fashion-mnist", split, FashionNames)
}

func loadIDXImages(name string, split Split, classes []string) (*Images, error) {
	var prefix string
	switch split {
	case Train:
		prefix = "train"
	case Test:
		prefix = "t10k"
	default:
		return nil, fmt.Errorf("%s has splits %q and %q, not %q", name, Train, Test, split)
	}
	dir, err := open(name)
	if err != nil {
		return nil, err
	}
	imgs, err := ReadIDXFile(filepath.Join(dir, prefix+"-images-idx3-ubyte.gz"))
	if err != nil {
		return nil, damaged(name, err)
	}
	labels, err := ReadIDXFile(filepath.Join(dir, prefix+"-labels-idx1-ubyte.gz"))
	if err != nil {
		return nil, damaged(name, err)
	}
	if len(imgs.Dims) != 3 || len(labels.Dims) != 1 || imgs.Dims[0] != labels.Dims[0] {
		return nil, damaged(name, fmt.Errorf("images %v do not match labels %v", imgs.Dims, labels.Dims))
	}
	for i, l := range labels.Data {
		if int(l) >= len(classes) {
			return nil, damaged(name, fmt.Errorf("label %d of image %d is not a class", l, i))
		}
	}
	return &Images{N: imgs.Dims[0], Height: imgs.Dims[1], Width: imgs.Dims[2],
		Pixels: imgs.Data, Labels: labels.Data, Classes: classes}, nil
}
